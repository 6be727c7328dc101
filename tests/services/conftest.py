"""The services run on SQLite and on a real PostgreSQL: tests take both."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.history.settings import HistorySettings


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def history_settings(database_url: str) -> HistorySettings:
    return HistorySettings(database_url=database_url, consumer="test-consumer", block_ms=10,
                           claim_idle_ms=50)
