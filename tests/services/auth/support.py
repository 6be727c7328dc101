"""Helpers for the auth service tests: open the app in-process, register, log in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from services.auth.app import create_app
from services.auth.context import AuthContext
from services.auth.settings import AuthSettings

PASSWORD = "correct horse battery"


@asynccontextmanager
async def running(app: FastAPI, client: tuple[str, int] = ("10.0.0.7", 5000)
                  ) -> AsyncIterator[httpx.AsyncClient]:
    """`app` with its lifespan run, behind an in-process client calling from `client`."""
    async with app.router.lifespan_context(app), connect(app, client) as http:
        yield http


def connect(app: FastAPI, client: tuple[str, int] = ("10.0.0.7", 5000)) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=client)
    return httpx.AsyncClient(transport=transport, base_url="http://auth")


@asynccontextmanager
async def open_service(settings: AuthSettings, **overrides: Any
                       ) -> AsyncIterator[tuple[httpx.AsyncClient, AuthContext]]:
    app = create_app(settings.model_copy(update=overrides))
    async with running(app) as http:
        yield http, app.state.auth


async def register(client: httpx.AsyncClient, username: str = "ada",
                   password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/auth/register",
                                 json={"username": username, "password": password})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def login(client: httpx.AsyncClient, username: str = "ada",
                password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def register_and_login(client: httpx.AsyncClient, username: str = "ada") -> dict[str, Any]:
    await register(client, username)
    return await login(client, username)


def bearer(tokens: dict[str, Any] | str) -> dict[str, str]:
    token = tokens if isinstance(tokens, str) else tokens["access_token"]
    return {"Authorization": f"Bearer {token}"}
