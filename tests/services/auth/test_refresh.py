"""Refresh tokens: opaque, stored hashed, rotated on every use; reuse kills the family."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from services.auth import crud
from services.auth.context import AuthContext
from services.auth.models import RefreshToken, utcnow
from tests.services.auth.support import bearer, login, register, register_and_login


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh", json={"refresh_token": token})


async def test_refresh_tokens_are_stored_only_as_sha256(client: httpx.AsyncClient,
                                                        ctx: AuthContext) -> None:
    tokens = await register_and_login(client)
    with ctx.sessions() as session:
        rows = session.scalars(select(RefreshToken)).all()
    assert len(rows) == 1
    assert rows[0].token_hash == hashlib.sha256(tokens["refresh_token"].encode()).hexdigest()
    assert tokens["refresh_token"] not in {rows[0].token_hash, rows[0].family_id}


async def test_refresh_rotates_the_pair(client: httpx.AsyncClient) -> None:
    first = await register_and_login(client)
    second = await refresh(client, first["refresh_token"])
    assert second.status_code == 200
    pair = second.json()
    assert pair["refresh_token"] != first["refresh_token"]
    assert pair["access_token"] != first["access_token"] and pair["token_type"] == "bearer"
    assert (await client.get("/auth/me", headers=bearer(pair))).json()["username"] == "ada"
    third = await refresh(client, pair["refresh_token"])
    assert third.status_code == 200


async def test_reuse_of_a_spent_token_revokes_the_whole_family(
        client: httpx.AsyncClient) -> None:
    first = await register_and_login(client)
    other_login = await login(client)  # another device: another family
    second = (await refresh(client, first["refresh_token"])).json()
    third = (await refresh(client, second["refresh_token"])).json()
    # A thief replays the first token: the whole family dies, the newest token too.
    replay = await refresh(client, first["refresh_token"])
    assert replay.status_code == 401 and "reused" in replay.json()["detail"]
    newest = await refresh(client, third["refresh_token"])
    assert newest.status_code == 401 and "revoked" in newest.json()["detail"]
    assert (await refresh(client, other_login["refresh_token"])).status_code == 200


async def test_concurrent_use_of_one_token_lets_at_most_one_win(
        client: httpx.AsyncClient) -> None:
    tokens = await register_and_login(client)
    answers = await asyncio.gather(*(refresh(client, tokens["refresh_token"])
                                     for _ in range(2)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200, 401]
    # Two presenters of one token: the family is revoked, the winner's successor too.
    winner = next(answer for answer in answers if answer.status_code == 200).json()
    assert (await refresh(client, winner["refresh_token"])).status_code == 401


async def test_logout_revokes_the_family(client: httpx.AsyncClient) -> None:
    first = await register_and_login(client)
    second = (await refresh(client, first["refresh_token"])).json()
    out = await client.post("/auth/logout", json={"refresh_token": second["refresh_token"]})
    assert out.status_code == 204 and out.content == b""
    after = await refresh(client, second["refresh_token"])
    assert after.status_code == 401 and "revoked" in after.json()["detail"]
    # Logging out twice, or with a token never issued, is not an error.
    again = await client.post("/auth/logout", json={"refresh_token": second["refresh_token"]})
    unknown = await client.post("/auth/logout", json={"refresh_token": "x" * 43})
    assert again.status_code == unknown.status_code == 204


async def test_expired_unknown_and_malformed_refresh_tokens(client: httpx.AsyncClient,
                                                            ctx: AuthContext) -> None:
    tokens = await register_and_login(client)
    with ctx.sessions() as session:
        session.execute(update(RefreshToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    expired = await refresh(client, tokens["refresh_token"])
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    unknown = await refresh(client, "y" * 43)
    assert unknown.status_code == 401 and "unknown refresh token" in unknown.json()["detail"]
    short = await client.post("/auth/refresh", json={"refresh_token": "abc"})
    assert short.status_code == 422


async def test_refresh_carries_current_roles(client: httpx.AsyncClient,
                                             ctx: AuthContext) -> None:
    await register(client, "root")
    tokens = await login(client, "root")
    assert not ctx.verifier.verify(tokens["access_token"]).is_admin
    with ctx.sessions() as session:
        user = crud.get_user_by_username(session=session, username="root")
        assert user is not None
        crud.grant_role(session=session, user=user, role="admin", granted_by="test")
    pair = (await refresh(client, tokens["refresh_token"])).json()
    principal = ctx.verifier.verify(pair["access_token"])
    assert principal.username == "root" and principal.is_admin
    with ctx.sessions() as session:
        user = crud.get_user_by_username(session=session, username="root")
        assert user is not None
        crud.revoke_role(session=session, user=user, role="admin", revoked_by="test")
    again = (await refresh(client, pair["refresh_token"])).json()
    assert not ctx.verifier.verify(again["access_token"]).is_admin
