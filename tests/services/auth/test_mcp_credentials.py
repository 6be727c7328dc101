"""Users' own credentials for MCP servers: stored encrypted and bound to their owner, read
back only by an agent server holding the service key, and by the gateway of the
distributed shape over HTTP as the calling user."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from server import caller
from server.gateway import build_services
from server.settings import Settings
from services.auth.app import create_app
from services.auth.models import McpCredential
from services.auth.routes import read_mcp_credential
from services.auth.settings import AuthSettings
from services.auth.vault import Vault, VaultError, decode_key, load_vault
from tests.services.auth.support import bearer, open_service, register_and_login
from tests.support.live import serve_in_thread

SERVICE_KEY = "a long shared service key"


async def test_stored_encrypted_and_bound_to_the_user(auth_settings: AuthSettings) -> None:
    async with open_service(auth_settings, service_key=SecretStr(SERVICE_KEY)) as (client,
                                                                                  ctx):
        ada = bearer(await register_and_login(client, "ada"))
        bob = bearer(await register_and_login(client, "bob"))
        put = await client.put("/auth/mcp-credentials/tickets", headers=ada,
                               json={"credential": "ada-secret"})
        assert put.status_code == 200 and put.json()["server"] == "tickets"
        assert (await client.put("/auth/mcp-credentials/tickets", headers=ada,
                                 json={"credential": "", "extra": 1})).status_code == 422

        with ctx.sessions() as session:
            row = session.scalars(select(McpCredential)).one()
            assert "ada-secret" not in row.ciphertext
            ada_id = row.user_id
        assert read_mcp_credential(ctx, str(ada_id), "tickets") == "ada-secret"
        assert read_mcp_credential(ctx, str(ada_id + 1), "tickets") is None
        with pytest.raises(VaultError):  # a row moved to another user does not open
            ctx.vault.open(ada_id + 1, "tickets", row.ciphertext)
        with pytest.raises(VaultError):  # nor under another server's name
            ctx.vault.open(ada_id, "other", row.ciphertext)

        reveal = "/auth/mcp-credentials/tickets/reveal"
        key = {"x-parley-service-key": SERVICE_KEY}
        assert (await client.post(reveal, headers=ada)).status_code == 403
        assert (await client.post(reveal, headers={**ada, "x-parley-service-key": "no"})
                ).status_code == 403
        assert (await client.post(reveal, headers=key)).status_code == 401
        shown = await client.post(reveal, headers={**ada, **key})
        assert shown.json() == {"server": "tickets", "user_id": str(ada_id),
                                "credential": "ada-secret"}
        assert (await client.post(reveal, headers={**bob, **key})).status_code == 404
        assert (await client.get("/auth/mcp-credentials", headers=bob)).json() == []


def test_the_key_file_is_made_once_and_kept(tmp_path: Path) -> None:
    first = load_vault(None, tmp_path / "keys")
    again = load_vault(None, tmp_path / "keys")
    assert first.key == again.key and len(first.key) == 32
    assert (tmp_path / "keys" / "mcp-credentials.key").stat().st_mode & 0o777 == 0o600
    sealed = first.seal(7, "x", "secret")
    assert again.open(7, "x", sealed) == "secret"
    with pytest.raises(VaultError):
        Vault(b"\0" * 32).open(7, "x", sealed)
    with pytest.raises(ValueError, match="32 bytes"):
        decode_key("c2hvcnQ")


async def test_the_distributed_gateway_reads_the_callers_credential(
        auth_settings: AuthSettings, tmp_path: Path) -> None:
    app = create_app(auth_settings.model_copy(update={"service_key": SecretStr(SERVICE_KEY)}))
    with serve_in_thread(app) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            ada = await register_and_login(client, "ada")
            await client.put("/auth/mcp-credentials/tickets", headers=bearer(ada),
                             json={"credential": "ada-secret"})
            ada_id = str((await client.get("/auth/me", headers=bearer(ada))).json()["id"])
        common: dict[str, Any] = {"auth_url": url, "history_url": "http://127.0.0.1:9",
                  "data_dir": tmp_path / "gw"}
        with_key = build_services(Settings(auth_service_key=SecretStr(SERVICE_KEY), **common))
        without = build_services(Settings(**common))
        lookup = with_key.tool_services()["mcp_credentials"]
        caller.access_token.set(ada["access_token"])
        try:
            assert await lookup(ada_id, "tickets") == "ada-secret"
            assert await lookup(ada_id, "elsewhere") is None
            # A token that is not the user's the call is for reads nothing.
            assert await lookup(ada_id + "0", "tickets") is None
            assert await without.tool_services()["mcp_credentials"](ada_id, "tickets") is None
        finally:
            caller.access_token.set(None)
