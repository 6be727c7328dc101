"""The history migrations on SQLite and PostgreSQL: from an empty database, and from the
previous revision with rows in it."""

from __future__ import annotations

from datetime import datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine, insert, select, text
from sqlalchemy.exc import IntegrityError

from services.database import make_engine, upgrade_database
from services.history.context import MIGRATIONS
from services.history.models import Base, Message, Thread
from services.history.settings import HistorySettings
from tests.services.history_support import ADA, BOB, history_client, message, post

HEAD = "0002"


def alembic(url: str) -> Config:
    """What `upgrade_database` configures, for going to other revisions than the newest."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def assert_schema_is_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT version_num FROM alembic_version_history")) \
            == HEAD
        context = MigrationContext.configure(connection, opts={
            "compare_type": True, "version_table": "alembic_version_history"})
        assert compare_metadata(context, Base.metadata) == []


def test_migrations_build_the_schema_of_the_models(database_url: str) -> None:
    upgrade_database(database_url, MIGRATIONS)
    upgrade_database(database_url, MIGRATIONS)  # at every start: a no-op the second time
    command.downgrade(alembic(database_url), "0001")  # and back down and up again
    command.upgrade(alembic(database_url), HEAD)
    engine = make_engine(database_url)
    try:
        assert_schema_is_the_models(engine)
    finally:
        engine.dispose()


def rows(connection: Connection) -> list[tuple[object, ...]]:
    return [tuple(row) for row in connection.execute(
        select(Message.seq, Message.user_id, Message.id, Message.thread_id, Message.content)
        .order_by(Message.seq))]


async def test_upgrading_from_global_ids_keeps_rows_and_frees_ids_per_user(
        database_url: str, history_settings: HistorySettings) -> None:
    command.upgrade(alembic(database_url), "0001")  # the schema before ids were per user
    at = datetime(2026, 1, 1, 12, 0)
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(insert(Thread), [
                {"user_id": u, "id": "t", "title": u, "created_at": at, "updated_at": at}
                for u in ("ada", "bob")])
            connection.execute(insert(Message), [
                {"id": mid, "user_id": user, "thread_id": "t", "role": "user",
                 "content": f"{user} {mid}", "created_at": at}
                for user, mid in (("ada", "m1"), ("ada", "m2"), ("bob", "b1"))])
            before = rows(connection)
        upgrade_database(database_url, MIGRATIONS)
        with engine.connect() as connection:
            assert rows(connection) == before  # every row, with its sequence number
        assert_schema_is_the_models(engine)
        with pytest.raises(IntegrityError), engine.begin() as connection:
            # The database itself still refuses one user's id twice.
            connection.execute(insert(Message).values(
                id="m1", user_id="ada", thread_id="t", role="user", content="x",
                created_at=at))
    finally:
        engine.dispose()
    async with history_client(history_settings) as client:
        bob = await post(client, BOB, "t", message("user", "bob's own m1", "m1"))
        ada = await post(client, ADA, "t", message("user", "ada m1 redelivered", "m1"))
        page = (await client.get("/history", headers=BOB, params={"thread_id": "t"})).json()
    assert bob.json() == {"stored": 1, "duplicates": 0}
    assert ada.json() == {"stored": 0, "duplicates": 1}
    assert [m["content"] for m in page["messages"]] == ["bob's own m1", "bob b1"]
