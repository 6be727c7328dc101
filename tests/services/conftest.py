"""The services run on SQLite and on a real PostgreSQL: tests take both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.history.consumer import ensure_group
from services.history.context import HistoryContext, build_history
from services.history.settings import HistorySettings
from tests.services.history_support import tokens


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def history_settings(database_url: str) -> HistorySettings:
    return HistorySettings(database_url=database_url, consumer="test-consumer", block_ms=10,
                           claim_idle_ms=50)


@pytest.fixture
async def stream_ctx(history_settings: HistorySettings, redis_url: str
                     ) -> AsyncIterator[tuple[Redis, HistoryContext]]:
    ctx = build_history(history_settings.model_copy(update={"redis_url": redis_url}),
                        tokens.verifier())
    ctx.start()
    redis = Redis.from_url(redis_url)
    await ensure_group(redis, ctx)
    yield redis, ctx
    await redis.aclose()
    ctx.close()
