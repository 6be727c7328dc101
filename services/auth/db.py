"""The auth database: engine and sessions from the settings, schema by Alembic migrations
(`upgrade_database` at start-up; the production path never calls `create_all`)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from services import database

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """Works with `sqlite:///path` (foreign keys on, WAL) and `postgresql+psycopg://`."""
    return database.make_engine(url)


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    return database.make_sessions(engine)


def make_write_sessions(engine: Engine) -> sessionmaker[Session]:
    return database.make_write_sessions(engine)


def upgrade_database(url: str) -> None:
    """Run the auth migrations up to head (idempotent; safe at every start)."""
    database.upgrade_database(url, MIGRATIONS)
