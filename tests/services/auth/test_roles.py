"""Roles go to existing accounts, by id, from an operator command, and every grant and use
is logged: never to whoever registers a name first."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import jwt
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from server.settings import Settings
from services.auth.admin import admin_app
from services.auth.context import AuthContext
from services.auth.settings import AuthSettings
from tests.services.auth.support import bearer, login, open_service, register


def roles_in(tokens: dict) -> list[str]:
    return list(jwt.decode(tokens["access_token"], options={"verify_signature": False})["roles"])


@pytest.mark.parametrize("variable", ["PARLEY_AUTH_ADMIN_USERNAMES", "PARLEY_ADMIN_USERNAMES"])
def test_admin_by_username_is_refused_at_start(monkeypatch: pytest.MonkeyPatch,
                                               variable: str) -> None:
    monkeypatch.setenv(variable, "rootadmin")
    with pytest.raises(ValidationError, match="parley admin grant"):
        AuthSettings() if variable.startswith("PARLEY_AUTH") else Settings()


async def test_a_new_account_is_a_plain_user_whatever_its_name(client: httpx.AsyncClient
                                                               ) -> None:
    for name in ("RootAdmin", "admin", "root"):
        await register(client, name)
        tokens = await login(client, name)
        assert roles_in(tokens) == ["user"]
        me = await client.get("/auth/me", headers=bearer(tokens))
        assert me.json()["roles"] == ["user"]


async def test_an_operator_grants_and_revokes_admin(auth_settings: AuthSettings,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    cli = admin_app(lambda: auth_settings)
    runner = CliRunner()
    async with open_service(auth_settings) as (client, _ctx):
        await register(client, "ada")
        await register(client, "bob")
        missing = runner.invoke(cli, ["grant", "nobody"])
        assert missing.exit_code == 2 and "registers first" in missing.output
        unknown = runner.invoke(cli, ["grant", "ada", "--role", "superuser"])
        assert unknown.exit_code == 2 and "unknown role" in unknown.output

        with caplog.at_level(logging.WARNING, logger="parley.audit"):
            granted = runner.invoke(cli, ["grant", "Ada"])
        assert granted.exit_code == 0, granted.output
        assert "now has the admin role" in granted.output
        [record] = [r for r in caplog.records if r.name == "parley.audit"]
        assert record.action == "grant" and record.role == "admin"  # type: ignore[attr-defined]
        assert str(record.actor).startswith("operator:")  # type: ignore[attr-defined]

        assert roles_in(await login(client, "ada")) == ["user", "admin"]
        assert roles_in(await login(client, "bob")) == ["user"]
        again = runner.invoke(cli, ["grant", "ada"])
        assert "already had" in again.output
        listed = runner.invoke(cli, ["roles"])
        assert "ada (id" in listed.output and "admin" in listed.output
        assert "bob" not in listed.output

        revoked = runner.invoke(cli, ["revoke", "ada"])
        assert revoked.exit_code == 0 and "no longer has" in revoked.output
        assert roles_in(await login(client, "ada")) == ["user"]


async def test_grants_are_kept_by_account_not_name(auth_settings: AuthSettings,
                                                   ctx: AuthContext,
                                                   client: httpx.AsyncClient) -> None:
    """A grant belongs to the account it was given to: deleting that account and
    registering its name again gives a plain user."""
    from sqlalchemy import delete

    from services.auth.models import User

    await register(client, "grace")
    granted = CliRunner().invoke(admin_app(lambda: auth_settings), ["grant", "grace"])
    assert granted.exit_code == 0, granted.output
    assert roles_in(await login(client, "grace")) == ["user", "admin"]
    with ctx.sessions() as session:
        session.execute(delete(User).where(User.username == "grace"))
        session.commit()
    await register(client, "grace")
    assert roles_in(await login(client, "grace")) == ["user"]


def test_the_cli_migrates_an_empty_database(tmp_path: Path) -> None:
    settings = AuthSettings(database_url=f"sqlite:///{tmp_path / 'auth.db'}",
                            keys_dir=tmp_path / "keys")
    listed = CliRunner().invoke(admin_app(lambda: settings), ["roles"])
    assert listed.exit_code == 0 and "no roles granted" in listed.output
