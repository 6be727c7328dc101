"""Auth service fixtures: settings on SQLite or PostgreSQL (`database_url` from the parent
conftest is parametrized over both), keys in the test's folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.auth.context import AuthContext
from services.auth.settings import AuthSettings
from tests.services.auth.support import open_service


@pytest.fixture
def auth_settings(database_url: str, tmp_path: Path) -> AuthSettings:
    return AuthSettings(database_url=database_url, keys_dir=tmp_path / "keys",
                        login_max_failures=3,
                        login_window_seconds=60)


@pytest.fixture
async def service(auth_settings: AuthSettings
                  ) -> AsyncIterator[tuple[httpx.AsyncClient, AuthContext]]:
    async with open_service(auth_settings) as opened:
        yield opened


@pytest.fixture
def client(service: tuple[httpx.AsyncClient, AuthContext]) -> httpx.AsyncClient:
    return service[0]


@pytest.fixture
def ctx(service: tuple[httpx.AsyncClient, AuthContext]) -> AuthContext:
    return service[1]
