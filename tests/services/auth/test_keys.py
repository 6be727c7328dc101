"""Signing keys on disk: made on first start, private to the service, rotated and retired."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import jwt

from services.auth.keys import KeyStore, main, rotate_keys
from services.auth.settings import AuthSettings
from tests.services.auth.support import bearer, open_service, register_and_login


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_first_start_makes_a_private_key_that_later_starts_reuse(
        auth_settings: AuthSettings) -> None:
    assert not auth_settings.keys_dir.exists()
    async with open_service(auth_settings) as (client, _ctx):
        tokens = await register_and_login(client)
        jwks = (await client.get("/auth/.well-known/jwks.json")).json()
    pems = list(auth_settings.keys_dir.glob("*.pem"))
    assert len(pems) == 1
    assert mode(pems[0]) == 0o600 and mode(auth_settings.keys_dir) == 0o700
    assert pems[0].read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    [key] = jwks["keys"]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["alg"] == "EdDSA"
    assert "d" not in key  # the public half only
    # A restart signs with the same key, so tokens issued before it stay valid.
    async with open_service(auth_settings) as (client, _ctx):
        me = await client.get("/auth/me", headers=bearer(tokens))
        assert me.status_code == 200
        assert (await client.get("/auth/.well-known/jwks.json")).json() == jwks
    assert len(list(auth_settings.keys_dir.glob("*.pem"))) == 1


def backdate(store: KeyStore, kid: str, seconds_ago: float) -> None:
    """Pretend the key was made `seconds_ago` (its creation time is in its file name)."""
    [path] = store.directory.glob(f"*-{kid}.pem")
    path.rename(path.with_name(f"{time.time_ns() - int(seconds_ago * 1e9)}-{kid}.pem"))


def test_rotate_keys_retires_only_keys_whose_tokens_have_expired(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    oldest, older, recent = store.rotate(), store.rotate(), store.rotate()
    backdate(store, oldest.kid, 3 * 3600)
    backdate(store, older.kid, 2 * 3600)  # replaced `oldest` two hours ago
    backdate(store, recent.kid, 60)       # replaced `older` a minute ago
    assert store.current().kid == recent.kid
    new = rotate_keys(tmp_path, token_ttl_seconds=900)
    kids = [key.kid for key in store.signing_keys()]
    # `older` still verifies tokens signed up to a minute ago; `oldest`'s are all expired.
    assert kids == [older.kid, recent.kid, new.kid]
    assert store.current().kid == new.kid
    assert [k["kid"] for k in store.jwks()["keys"]] == kids


def test_the_order_comes_from_the_file_names_not_modification_times(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    first, second = store.rotate(), store.rotate()
    # A restore from backup rewrites the files: the older one may well be newest on disk.
    [first_path] = tmp_path.glob(f"*-{first.kid}.pem")
    later = time.time() + 3600
    os.utime(first_path, (later, later))
    assert KeyStore(tmp_path).current().kid == second.kid


def test_rotation_from_the_command_line(tmp_path: Path) -> None:
    main(["--dir", str(tmp_path), "--ttl", "900"])
    main(["--dir", str(tmp_path), "--ttl", "900"])
    assert len(KeyStore(tmp_path).signing_keys()) == 2


async def test_a_key_added_by_another_replica_is_picked_up(auth_settings: AuthSettings) -> None:
    async with open_service(auth_settings) as (client, ctx):
        before = ctx.keys.current().kid
        added = KeyStore(auth_settings.keys_dir).rotate()  # as another process would
        tokens = await register_and_login(client)
        kids = [k["kid"] for k in (await client.get("/auth/.well-known/jwks.json")).json()["keys"]]
        me = await client.get("/auth/me", headers=bearer(tokens))
    assert jwt.get_unverified_header(tokens["access_token"])["kid"] == added.kid != before
    assert kids == [before, added.kid]
    assert me.status_code == 200
