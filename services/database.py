"""SQLAlchemy engines and Alembic upgrades for the services: the same code on SQLite (the
embedded shape) and PostgreSQL (the distributed one). A library, not shared state: each
service has its own database, models and migrations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from fastapi import APIRouter, Response
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import sessionmaker

# A service's sync routes run in a pool of 40 threads (AnyIO's default): with as many
# connections, a route never waits for one while another thread holds one idle.
POOL_SIZE, POOL_OVERFLOW = 20, 20


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_engine(url, connect_args={"check_same_thread": False},
                               pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE,
                         max_overflow=POOL_OVERFLOW)


def make_sessions(engine: Engine) -> sessionmaker:  # type: ignore[type-arg]
    return sessionmaker(engine, expire_on_commit=False)


def make_write_sessions(engine: Engine) -> sessionmaker:  # type: ignore[type-arg]
    """Sessions for a unit of work that writes, to use in a `with` block that ends it.

    On SQLite they take the database's write lock when their transaction begins. A
    transaction that reads and then writes (register: is the name free?, then insert)
    would otherwise fail at once with "database is locked" whenever another writer
    committed in between, whatever busy_timeout says; holding the lock from the start, it
    waits its turn instead. Reads keep plain sessions, which never block a writer."""
    return sessionmaker(engine.execution_options(parley_write=True), expire_on_commit=False)


def upgrade_database(url: str, migrations: Path) -> None:
    """Bring the schema to the newest migration (safe to run at every start)."""
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
    command.upgrade(config, "head")


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # SQLAlchemy begins transactions itself (`_begin_immediate`), not the driver.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # With WAL, NORMAL syncs at checkpoints, not at every commit: a crash of the process
    # loses nothing; only a power cut may lose the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _begin(connection) -> None:  # type: ignore[no-untyped-def]
    write = connection.get_execution_options().get("parley_write")
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def run_migrations(metadata: Any, version_table: str) -> None:
    """The body of a service's Alembic env.py: online migrations on the configured URL.
    Each service keeps its own version table, so two services may share one database."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("sqlalchemy.url is not set")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=metadata,
                              version_table=version_table, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


def health_router(prefix: str, sessions: Callable[[], Any]) -> APIRouter:
    """`/healthz` (alive) and `/readyz` (the database answers) for a service."""
    router = APIRouter(prefix=prefix, tags=["health"])

    @router.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    def readyz(response: Response) -> dict[str, str]:
        try:
            with sessions() as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:
            response.status_code = 503
            return {"status": "not ready", "database": type(exc).__name__}
        return {"status": "ready", "database": "ok"}

    return router
