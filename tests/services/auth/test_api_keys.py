"""Personal API keys: made with a login's access token, shown once, stored hashed, listed
and revoked by their owner only, exchanged for access tokens; on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from services.auth.context import AuthContext
from services.auth.models import ApiKey
from services.auth.security import token_hash
from tests.services.auth.support import bearer, register_and_login


async def make_key(client: httpx.AsyncClient, tokens: dict, name: str = "sdk",
                   **extra: object) -> dict:
    response = await client.post("/auth/api-keys", json={"name": name, **extra},
                                 headers=bearer(tokens))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_key_is_shown_once_and_stored_hashed(client: httpx.AsyncClient,
                                                     ctx: AuthContext) -> None:
    tokens = await register_and_login(client, "ada")
    made = await make_key(client, tokens, expires_in_days=30)
    assert made["key"].startswith("prl_") and made["prefix"] == made["key"][:12]
    assert made["expires_at"] is not None and made["revoked_at"] is None
    listed = (await client.get("/auth/api-keys", headers=bearer(tokens))).json()
    assert [k["id"] for k in listed] == [made["id"]] and "key" not in listed[0]
    with ctx.sessions() as session:
        [stored] = session.scalars(select(ApiKey)).all()
    assert stored.key_hash == token_hash(made["key"]) and made["key"] not in stored.key_hash


async def test_a_key_acts_as_its_owner_until_revoked(client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(client, "ada")
    key = (await make_key(client, tokens))["key"]
    for headers in ({"x-api-key": key}, {"Authorization": f"Bearer {key}"}):
        me = await client.get("/auth/me", headers=headers)
        assert me.status_code == 200 and me.json()["username"] == "ada"
    exchanged = await client.post("/auth/api-keys/exchange", headers={"x-api-key": key})
    assert exchanged.status_code == 200
    me = await client.get("/auth/me", headers=bearer(exchanged.json()["access_token"]))
    assert me.json()["username"] == "ada"
    # A key cannot make keys: a leaked one must not mint successors.
    refused = await client.post("/auth/api-keys", json={"name": "more"},
                                headers={"x-api-key": key})
    assert refused.status_code == 403
    key_id = (await client.get("/auth/api-keys", headers=bearer(tokens))).json()[0]["id"]
    assert (await client.delete(f"/auth/api-keys/{key_id}",
                                headers=bearer(tokens))).status_code == 204
    for path in ("/auth/me",):
        gone = await client.get(path, headers={"x-api-key": key})
        assert gone.status_code == 401 and "revoked" in gone.json()["detail"]
    gone = await client.post("/auth/api-keys/exchange", headers={"x-api-key": key})
    assert gone.status_code == 401
    listed = (await client.get("/auth/api-keys", headers=bearer(tokens))).json()
    assert listed[0]["revoked_at"] is not None


async def test_only_the_owner_sees_and_revokes_a_key(client: httpx.AsyncClient) -> None:
    ada = await register_and_login(client, "ada")
    bob = await register_and_login(client, "bob")
    made = await make_key(client, ada)
    assert (await client.get("/auth/api-keys", headers=bearer(bob))).json() == []
    other = await client.delete(f"/auth/api-keys/{made['id']}", headers=bearer(bob))
    assert other.status_code == 404
    assert (await client.get("/auth/me", headers={"x-api-key": made["key"]})).status_code \
        == 200


async def test_bad_keys_and_bad_requests_say_what_is_wrong(client: httpx.AsyncClient
                                                           ) -> None:
    tokens = await register_and_login(client, "ada")
    unknown = await client.get("/auth/me", headers={"x-api-key": "prl_not-a-key"})
    assert unknown.status_code == 401 and "unknown API key" in unknown.json()["detail"]
    no_name = await client.post("/auth/api-keys", json={}, headers=bearer(tokens))
    assert no_name.status_code == 422 and "name" in no_name.text
    no_key = await client.post("/auth/api-keys/exchange", headers=bearer(tokens))
    assert no_key.status_code == 401


async def test_a_key_used_by_many_requests_at_once_is_never_refused(
        client: httpx.AsyncClient, ctx: AuthContext) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import update

    from services.auth import crud

    tokens = await register_and_login(client, "ada")
    key = (await make_key(client, tokens))["key"]

    def use() -> str:
        with ctx.sessions() as session:
            return crud.user_of_api_key(session=session, secret=key).username

    for _ in range(5):
        with ctx.sessions() as session:  # long unused: every request may note the use
            session.execute(update(ApiKey).values(last_used_at=None))
            session.commit()
        with ThreadPoolExecutor(8) as pool:
            users = list(pool.map(lambda _: use(), range(16)))
        assert users == ["ada"] * 16
    with ctx.sessions() as session:
        [stored] = session.scalars(select(ApiKey)).all()
    assert stored.last_used_at is not None
