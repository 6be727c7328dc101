"""Accounts on SQLite and PostgreSQL: register, log in (JSON and form), profile, roles."""

from __future__ import annotations

import httpx
import jwt
import pytest
from sqlalchemy import delete

from services.auth import security
from services.auth.context import AuthContext
from services.auth.models import User
from services.auth.settings import AuthSettings
from tests.services.auth.support import PASSWORD, bearer, login, register


async def test_register_returns_the_user_without_its_hash(client: httpx.AsyncClient) -> None:
    created = await register(client, "Ada.Lovelace")
    assert created["username"] == "ada.lovelace"
    assert created["roles"] == ["user"] and created["display_name"] is None
    assert not {"password", "password_hash"} & created.keys()


async def test_usernames_are_unique_whatever_their_case(client: httpx.AsyncClient) -> None:
    await register(client, "ada")
    duplicate = await client.post("/auth/register", json={"username": "ADA",
                                                          "password": PASSWORD})
    assert duplicate.status_code == 409
    assert "'ada' is taken" in duplicate.json()["detail"]


@pytest.mark.parametrize(("username", "password", "message"), [
    ("ab", PASSWORD, "username must be 3-32 letters"),
    ("a" * 33, PASSWORD, "username must be 3-32 letters"),
    ("bad name", PASSWORD, "username must be 3-32 letters"),
    ("ümlaut", PASSWORD, "username must be 3-32 letters"),
    ("grace", "short", "at least 10 characters"),
    ("grace", "12345678901", "must not be only digits"),
    ("gracehopper", "GraceHopper", "must not be the username"),
])
async def test_registration_policy_says_what_to_fix(client: httpx.AsyncClient, username: str,
                                                    password: str, message: str) -> None:
    response = await client.post("/auth/register",
                                 json={"username": username, "password": password})
    assert response.status_code == 422
    assert message in response.text


async def test_login_with_json_and_with_the_oauth2_form(client: httpx.AsyncClient,
                                                        auth_settings: AuthSettings) -> None:
    await register(client, "ada")
    as_json = await login(client, "ADA")  # usernames are case-insensitive at login too
    form = await client.post("/auth/login", data={"username": "ada", "password": PASSWORD})
    assert form.status_code == 200
    for tokens in (as_json, form.json()):
        assert tokens["token_type"] == "bearer"
        assert tokens["expires_in"] == auth_settings.access_ttl_seconds
        assert len(tokens["refresh_token"]) >= 40
        me = await client.get("/auth/me", headers=bearer(tokens))
        assert me.status_code == 200 and me.json()["username"] == "ada"


async def test_access_token_claims(client: httpx.AsyncClient, ctx: AuthContext,
                                   auth_settings: AuthSettings) -> None:
    user = await register(client, "ada")
    token = (await login(client))["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA" and header["kid"] == ctx.keys.current().kid
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == str(user["id"]) and claims["username"] == "ada"
    assert claims["roles"] == ["user"]
    assert claims["iss"] == auth_settings.issuer and claims["aud"] == auth_settings.audience
    assert claims["exp"] - claims["iat"] == auth_settings.access_ttl_seconds
    assert len(claims["jti"]) == 32
    assert (await login(client))["access_token"] != token  # a new jti every time


@pytest.mark.parametrize(("kwargs", "status", "message"), [
    ({"json": {"username": "ada"}}, 422, "send a username and a password"),
    ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422,
     "send a username and a password"),
    ({"data": {"username": "ada"}}, 422, "send a username and a password"),
    ({"content": b"ada:pw", "headers": {"content-type": "text/plain"}}, 415,
     "application/json"),
])
async def test_malformed_logins(client: httpx.AsyncClient, kwargs: dict, status: int,
                                message: str) -> None:
    response = await client.post("/auth/login", **kwargs)
    assert response.status_code == status
    assert message in response.json()["detail"]


async def test_wrong_password_and_unknown_user_look_the_same(
        client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    await register(client, "ada")
    checked: list[str] = []
    real_verify = security._hasher.verify

    def spy(password: str, hash: str) -> bool:
        checked.append(hash)
        return real_verify(password, hash)

    monkeypatch.setattr(security._hasher, "verify", spy)
    wrong = await client.post("/auth/login", json={"username": "ada", "password": "not it"})
    ghost = await client.post("/auth/login", json={"username": "ghost", "password": PASSWORD})
    assert wrong.status_code == ghost.status_code == 401
    assert wrong.json() == ghost.json() == {"detail": "wrong username or password"}
    assert wrong.headers["WWW-Authenticate"] == ghost.headers["WWW-Authenticate"] == "Bearer"
    # The unknown user still paid for an argon2 check, against the dummy hash.
    assert security.dummy_hash() in checked


async def test_profile_is_read_and_patched_with_the_access_token(
        client: httpx.AsyncClient) -> None:
    await register(client, "ada")
    auth = bearer(await login(client))
    patched = await client.patch("/auth/me", headers=auth, json={
        "display_name": "  Ada L. ", "preferred_language": "pt-BR",
        "custom_instructions": "Answer briefly."})
    assert patched.status_code == 200
    assert patched.json()["display_name"] == "Ada L."
    # Only what is sent changes; null clears a field.
    await client.patch("/auth/me", headers=auth, json={"display_name": None})
    me = (await client.get("/auth/me", headers=auth)).json()
    assert me["display_name"] is None
    assert me["preferred_language"] == "pt-BR"
    assert me["custom_instructions"] == "Answer briefly."
    named = await client.patch("/auth/me", headers=auth, json={"preferred_language": "Français"})
    assert named.json()["preferred_language"] == "Français"


@pytest.mark.parametrize(("body", "message"), [
    ({"custom_instructions": "x" * 2001}, "at most 2000 characters"),
    ({"display_name": "x" * 81}, "at most 80 characters"),
    ({"preferred_language": "french!"}, "a language name or tag"),
    ({"preferred_language": "x1"}, "a language name or tag"),
    ({"roles": ["admin"]}, "Extra inputs are not permitted"),
])
async def test_profile_limits(client: httpx.AsyncClient, body: dict, message: str) -> None:
    await register(client, "ada")
    response = await client.patch("/auth/me", headers=bearer(await login(client)), json=body)
    assert response.status_code == 422
    assert message in response.text


async def test_me_needs_a_valid_token_of_an_existing_user(client: httpx.AsyncClient,
                                                          ctx: AuthContext) -> None:
    missing = await client.get("/auth/me")
    assert missing.status_code == 401 and "missing access token" in missing.json()["detail"]
    garbage = await client.get("/auth/me", headers=bearer("not-a-jwt"))
    assert garbage.status_code == 401 and "malformed token" in garbage.json()["detail"]
    await register(client, "ada")
    auth = bearer(await login(client))
    with ctx.sessions() as session:
        session.execute(delete(User))
        session.commit()
    gone = await client.get("/auth/me", headers=auth)
    assert gone.status_code == 401 and "no longer exists" in gone.json()["detail"]
