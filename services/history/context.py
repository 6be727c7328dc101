"""What the history routes and the consumer need, built from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from services.database import (
    make_engine,
    make_sessions,
    make_write_sessions,
    upgrade_database,
)
from services.history.settings import HistorySettings
from services.tokens import TokenVerifier, url_jwks

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class HistoryContext:
    settings: HistorySettings
    engine: Engine
    sessions: sessionmaker  # type: ignore[type-arg]  # reads
    verifier: TokenVerifier
    write_sessions: sessionmaker  # type: ignore[type-arg]  # units of work that write

    def start(self) -> None:
        upgrade_database(self.settings.database_url, MIGRATIONS)

    def close(self) -> None:
        self.engine.dispose()


def build_history(settings: HistorySettings, verifier: TokenVerifier | None = None
                  ) -> HistoryContext:
    if verifier is None:
        if not settings.jwks_url:
            raise ValueError("set PARLEY_HISTORY_JWKS_URL to the auth service's JWKS URL")
        verifier = TokenVerifier(url_jwks(settings.jwks_url), settings.issuer,
                                 settings.audience)
    engine = make_engine(settings.database_url)
    return HistoryContext(settings=settings, engine=engine, sessions=make_sessions(engine),
                          verifier=verifier, write_sessions=make_write_sessions(engine))
