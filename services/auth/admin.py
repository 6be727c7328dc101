"""Operator commands for roles: grant, revoke and list them on existing accounts, straight
on the auth database. Run where the auth service runs (`python -m services.auth.admin`,
configured from `PARLEY_AUTH_*`), or as `parley admin` in the embedded shape. There is no
HTTP route that grants a role: whoever can run this can already read the database."""

from __future__ import annotations

import getpass
import socket
from collections.abc import Callable
from typing import Annotated

import typer

from services.auth import crud, db
from services.auth.settings import AuthSettings


def operator() -> str:
    """Who grants, for the audit trail: the operating-system account and host."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "unknown"
    return f"operator:{name}@{socket.gethostname()}"[:64]


def admin_app(load_settings: Callable[[], AuthSettings]) -> typer.Typer:
    """The `grant`, `revoke` and `roles` commands, on the database `load_settings()` names."""
    app = typer.Typer(help="Roles of existing accounts (granted by id, logged).",
                      no_args_is_help=True)

    def sessions():  # type: ignore[no-untyped-def]
        settings = load_settings()
        db.upgrade_database(settings.database_url)
        return db.make_write_sessions(db.make_engine(settings.database_url))

    def account(session, username: str):  # type: ignore[no-untyped-def]
        user = crud.get_user_by_username(session=session, username=username)
        if user is None:
            typer.echo(f"no account {username!r}: roles go to existing accounts only; the "
                       "user registers first", err=True)
            raise typer.Exit(2)
        return user

    @app.command()
    def grant(username: str,
              role: Annotated[str, typer.Option(help="The role to grant.")] = "admin") -> None:
        """Grant a role to an existing account (it shows in their next access token)."""
        with sessions()() as session:
            user = account(session, username)
            try:
                added = crud.grant_role(session=session, user=user, role=role,
                                        granted_by=operator())
            except crud.UnknownRole as exc:
                typer.echo(str(exc), err=True)
                raise typer.Exit(2) from exc
        typer.echo(f"{user.username} (id {user.id}) "
                   f"{'now has' if added else 'already had'} the {role} role")

    @app.command()
    def revoke(username: str,
               role: Annotated[str, typer.Option(help="The role to take back.")] = "admin"
               ) -> None:
        """Take a role back (access tokens already issued keep it until they expire)."""
        with sessions()() as session:
            user = account(session, username)
            try:
                removed = crud.revoke_role(session=session, user=user, role=role,
                                           revoked_by=operator())
            except crud.UnknownRole as exc:
                typer.echo(str(exc), err=True)
                raise typer.Exit(2) from exc
        typer.echo(f"{user.username} (id {user.id}) "
                   f"{'no longer has' if removed else 'did not have'} the {role} role")

    @app.command()
    def roles() -> None:
        """List every granted role."""
        with sessions()() as session:
            grants = crud.role_grants(session=session)
        if not grants:
            typer.echo("no roles granted: every account is a plain user")
        for user, grant_row in grants:
            typer.echo(f"{user.username} (id {user.id})  {grant_row.role}  granted "
                       f"{grant_row.granted_at:%Y-%m-%d %H:%M} by {grant_row.granted_by}")

    return app


def main() -> None:  # pragma: no cover - process entry point
    admin_app(AuthSettings)()


if __name__ == "__main__":  # pragma: no cover
    main()
