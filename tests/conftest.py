"""Shared fixtures: real servers on 127.0.0.1, started per test session."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.embedded.postgres_server import Postgres, start_postgres
from server.embedded.redis_server import EmbeddedRedis, start_redis
from tests.support.system import require


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """A real redis-server (with JSON + search modules) for the whole session."""
    data = Path(tempfile.mkdtemp(prefix="parley-redis-"))
    server = start_redis(data)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> Iterator[str]:
    """The session's Redis, flushed before each test so tests do not see each other's keys."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """A throwaway PostgreSQL cluster for the whole session."""
    require("postgresql")  # skips the tests that need it when it is not installed
    # PostgreSQL runs as the `postgres` user when we are root: it must reach the folder.
    data = Path(tempfile.mkdtemp(prefix="parley-pg-"))
    os.chmod(data, 0o755)
    server = start_postgres(data)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


_db_counter = iter(range(1, 1_000_000))


@pytest.fixture
def postgres_url(postgres_server: Postgres) -> str:
    """A fresh, empty database on the session's PostgreSQL (SQLAlchemy URL, psycopg 3)."""
    return postgres_server.create_database(f"test_{next(_db_counter)}")


_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(autouse=True)
def _no_real_model_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any call to a hosted model API: tests use scripted models or local servers."""
    from openai import _base_client

    for cls_name in ("SyncAPIClient", "AsyncAPIClient"):
        cls = getattr(_base_client, cls_name)
        original = cls.request

        def guarded(self, *args, __original=original, **kwargs):  # type: ignore[no-untyped-def]
            if self.base_url.host not in _LOCAL_HOSTS:
                raise AssertionError(
                    f"a test tried to call a hosted model API at {self.base_url}")
            return __original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "request", guarded)
