"""The auth service against SQLite and PostgreSQL: accounts, tokens, rotation, limits."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import inspect

from services.auth import crud
from services.auth.app import create_app
from services.auth.context import build_auth
from services.auth.settings import AuthSettings
from services.database import make_engine
from services.tokens import InvalidToken, TokenVerifier, static_jwks
from tests.support.live import serve_in_thread

PASSWORD = "correct horse battery"


@pytest.fixture
def auth_settings(database_url: str, tmp_path: Path) -> AuthSettings:
    return AuthSettings(database_url=database_url, keys_dir=tmp_path / "keys",
                        login_max_failures=3,
                        login_window_seconds=60)


Open = Callable[..., Any]


@pytest.fixture
def open_auth(auth_settings: AuthSettings) -> Open:
    @asynccontextmanager
    async def open_client(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(auth_settings.model_copy(update=overrides))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("10.0.0.7", 5000))
            async with httpx.AsyncClient(transport=transport, base_url="http://auth") as c:
                c.app = app  # type: ignore[attr-defined]
                yield c

    return open_client


async def register_and_login(client: httpx.AsyncClient, username: str = "ada") -> dict:
    created = await client.post("/auth/register", json={"username": username,
                                                        "password": PASSWORD})
    assert created.status_code == 201, created.text
    tokens = await client.post("/auth/login", json={"username": username, "password": PASSWORD})
    assert tokens.status_code == 200, tokens.text
    return dict(tokens.json())


def bearer(tokens: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_register_login_and_profile(open_auth: Open, database_url: str) -> None:
    async with open_auth() as client:
        created = await client.post("/auth/register", json={"username": "Ada",
                                                            "password": PASSWORD})
        assert created.status_code == 201
        assert created.json()["username"] == "ada" and "password_hash" not in created.json()
        form = await client.post("/auth/login", data={"username": "ada", "password": PASSWORD})
        assert form.status_code == 200 and form.json()["token_type"] == "bearer"
        tokens = await client.post("/auth/login", json={"username": "ADA", "password": PASSWORD})
        me = await client.get("/auth/me", headers=bearer(tokens.json()))
        assert me.json()["username"] == "ada" and me.json()["roles"] == ["user"]
        patched = await client.patch("/auth/me", headers=bearer(tokens.json()), json={
            "display_name": "Ada L.", "preferred_language": "fr",
            "custom_instructions": "Answer in French."})
        assert patched.status_code == 200
        again = (await client.get("/auth/me", headers=bearer(tokens.json()))).json()
        assert again["custom_instructions"] == "Answer in French."
        assert again["preferred_language"] == "fr"
        unknown = await client.patch("/auth/me", headers=bearer(tokens.json()),
                                     json={"is_admin": True})
        assert unknown.status_code == 422
    # The schema came from the migrations, not from create_all.
    tables = set(inspect(make_engine(database_url)).get_table_names())
    assert {"users", "refresh_tokens", "alembic_version_auth"} <= tables


@pytest.mark.parametrize(("username", "password", "message"), [
    ("ab", PASSWORD, "3-32 letters"),
    ("bad name", PASSWORD, "3-32 letters"),
    ("grace", "short", "at least 10 characters"),
    ("grace", "12345678901", "only digits"),
    ("gracehopper", "GraceHopper", "not be the username"),
])
async def test_registration_policy(open_auth: Open, username: str, password: str,
                                   message: str) -> None:
    async with open_auth() as client:
        response = await client.post("/auth/register",
                                     json={"username": username, "password": password})
    assert response.status_code == 422
    assert message in response.text


async def test_duplicate_and_wrong_credentials(open_auth: Open) -> None:
    async with open_auth() as client:
        await register_and_login(client)
        duplicate = await client.post("/auth/register", json={"username": "ADA",
                                                              "password": PASSWORD})
        wrong = await client.post("/auth/login", json={"username": "ada", "password": "nope!"})
        ghost = await client.post("/auth/login", json={"username": "ghost",
                                                       "password": PASSWORD})
        no_token = await client.get("/auth/me")
    assert duplicate.status_code == 409 and "taken" in duplicate.text
    assert wrong.status_code == 401 and ghost.status_code == 401
    assert wrong.json() == ghost.json()  # no hint whether the user exists
    assert no_token.status_code == 401


async def test_refresh_rotates_and_reuse_revokes_the_family(open_auth: Open) -> None:
    async with open_auth() as client:
        first = await register_and_login(client)
        second = (await client.post("/auth/refresh",
                                    json={"refresh_token": first["refresh_token"]})).json()
        assert second["refresh_token"] != first["refresh_token"]
        third = await client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
        assert third.status_code == 200
        # A thief replays the first token: the whole family dies, the newest token too.
        replay = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert replay.status_code == 401 and "reused" in replay.text
        newest = await client.post("/auth/refresh",
                                   json={"refresh_token": third.json()["refresh_token"]})
        assert newest.status_code == 401 and "revoked" in newest.text
        # Another login is another family, unaffected.
        other = (await client.post("/auth/login", json={"username": "ada",
                                                        "password": PASSWORD})).json()
        assert (await client.post("/auth/refresh", json={
            "refresh_token": other["refresh_token"]})).status_code == 200


async def test_logout_revokes_the_refresh_token(open_auth: Open) -> None:
    async with open_auth() as client:
        tokens = await register_and_login(client)
        out = await client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
        after = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert out.status_code == 204
    assert after.status_code == 401


async def test_admin_role_and_jwks_verification(open_auth: Open,
                                                auth_settings: AuthSettings) -> None:
    async with open_auth() as client:
        await register_and_login(client, "root")
        ctx = client.app.state.auth  # type: ignore[attr-defined]
        with ctx.sessions() as session:
            user = crud.get_user_by_username(session=session, username="root")
            assert user is not None
            crud.grant_role(session=session, user=user, role="admin", granted_by="test")
        tokens = (await client.post("/auth/login", json={"username": "root",
                                                         "password": PASSWORD})).json()
        jwks = (await client.get("/auth/.well-known/jwks.json")).json()
    assert all("d" not in key for key in jwks["keys"])  # public halves only
    verifier = TokenVerifier(static_jwks(jwks), auth_settings.issuer, auth_settings.audience)
    principal = verifier.verify(tokens["access_token"])
    assert principal.username == "root" and principal.is_admin


def _sign(claims: dict, key: Any, kid: str, alg: str = "EdDSA") -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


async def test_bad_tokens_are_refused(open_auth: Open, auth_settings: AuthSettings) -> None:
    async with open_auth() as client:
        tokens = await register_and_login(client)
        jwks = (await client.get("/auth/.well-known/jwks.json")).json()
        ctx = client.app.state.auth  # type: ignore[attr-defined]
        key = ctx.keys.current()
        now = int(time.time())
        claims = {"sub": "1", "username": "ada", "roles": ["user"], "iat": now - 100,
                  "exp": now - 50, "iss": auth_settings.issuer, "aud": auth_settings.audience}
        header, payload, signature = tokens["access_token"].split(".")
        forged_payload = payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB")
        public_pem = key.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        cases = {
            "expired": _sign(claims, key.private, key.kid),
            "tampered": f"{header}.{forged_payload}.{signature}",
            "alg none": jwt.encode({**claims, "exp": now + 60}, "", algorithm="none",
                                   headers={"kid": key.kid}),
            "wrong key": _sign({**claims, "exp": now + 60}, Ed25519PrivateKey.generate(),
                               key.kid),
            "unknown kid": _sign({**claims, "exp": now + 60}, Ed25519PrivateKey.generate(),
                                 "nope"),
            "hs256 with public key": _hs256(claims | {"exp": now + 60}, public_pem, key.kid),
            "wrong audience": _sign({**claims, "exp": now + 60, "aud": "other"},
                                    key.private, key.kid),
        }
        verifier = TokenVerifier(static_jwks(jwks), auth_settings.issuer, auth_settings.audience)
        for name, token in cases.items():
            with pytest.raises(InvalidToken):
                verifier.verify(token)
            response = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, name


def _hs256(claims: dict, secret: bytes, kid: str) -> str:
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    signing_input = (b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
                     + "." + b64(json.dumps(claims).encode()))
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


async def test_key_rotation_keeps_old_tokens_valid(open_auth: Open) -> None:
    async with open_auth() as client:
        old = await register_and_login(client)
        ctx = client.app.state.auth  # type: ignore[attr-defined]
        old_kid = jwt.get_unverified_header(old["access_token"])["kid"]
        ctx.keys.rotate()
        new = (await client.post("/auth/login", json={"username": "ada",
                                                      "password": PASSWORD})).json()
        assert jwt.get_unverified_header(new["access_token"])["kid"] != old_kid
        kids = {k["kid"] for k in (await client.get("/auth/.well-known/jwks.json")).json()["keys"]}
        assert old_kid in kids
        assert (await client.get("/auth/me", headers=bearer(old))).status_code == 200
        assert (await client.get("/auth/me", headers=bearer(new))).status_code == 200
        # Once the old key is retired, its tokens stop working.
        assert ctx.keys.retire(older_than_seconds=-1) == 1
        fresh = build_auth(ctx.settings)
        with pytest.raises(InvalidToken, match="unknown key"):
            fresh.verifier.verify(old["access_token"])


async def test_failed_logins_are_rate_limited_in_redis(open_auth: Open, redis_url: str) -> None:
    async with open_auth(redis_url=redis_url) as client:
        await register_and_login(client)
        for _ in range(3):
            bad = await client.post("/auth/login", json={"username": "ada", "password": "x"})
            assert bad.status_code == 401
        limited = await client.post("/auth/login", json={"username": "ada",
                                                         "password": PASSWORD})
    assert limited.status_code == 429
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    assert "too many failed logins" in limited.text
    # Shared through Redis: a second instance of the service sees the same limit.
    async with open_auth(redis_url=redis_url) as other:
        again = await other.post("/auth/login", json={"username": "ada", "password": PASSWORD})
    assert again.status_code == 429


async def test_over_real_http(auth_settings: AuthSettings) -> None:
    with serve_in_thread(create_app(auth_settings)) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            tokens = await register_and_login(client, "grace")
            me = await client.get("/auth/me", headers=bearer(tokens))
            ready = await client.get("/auth/readyz")
    assert me.json()["username"] == "grace"
    assert ready.json() == {"status": "ready", "database": "ok"}
