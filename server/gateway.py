"""The gateway's view of the auth and history services: mounted in this process on SQLite
(embedded), or reached over HTTP with tokens checked against the auth service's JWKS
(distributed). Same code, a setting apart."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import Depends, FastAPI, Request

from server.settings import Settings
from services.auth.context import AuthContext, build_auth
from services.auth.routes import build_router as auth_router
from services.auth.settings import AuthSettings
from services.history.consumer import consumer_running
from services.history.context import HistoryContext, build_history
from services.history.routes import build_router as history_router
from services.history.settings import HistorySettings
from services.tokens import InvalidToken, Principal, TokenVerifier, presented_token, url_jwks

log = logging.getLogger(__name__)

PROFILE_FIELDS = ("display_name", "preferred_language", "custom_instructions")


@dataclass
class Services:
    settings: Settings
    verifier: TokenVerifier | None
    auth: AuthContext | None = None  # set when mounted here
    history: HistoryContext | None = None
    profile_ttl: float = 60.0  # seconds before a cached profile is fetched again
    _profiles: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    # The app the mounted services are served by: embedded, they are called through it.
    _app: FastAPI | None = field(default=None, repr=False)

    def include(self, app: FastAPI) -> None:
        self._app = app
        if self.auth is not None:
            app.include_router(auth_router(self.auth),
                               dependencies=[Depends(self._after_profile_change)])
        if self.history is not None:
            app.include_router(history_router(self.history))

    def _in_process(self, caller: str | None = None) -> httpx.AsyncClient:
        if self._app is None:
            raise RuntimeError("the mounted services are not included in an app yet")
        transport = httpx.ASGITransport(app=self._app, client=(caller, 0)) if caller \
            else httpx.ASGITransport(app=self._app)
        return httpx.AsyncClient(transport=transport, base_url="http://parley", timeout=10)

    def auth_client(self, caller: str | None = None) -> httpx.AsyncClient:
        """A client of the auth service. `caller` is the address of whoever the gateway
        calls for: the auth service counts failed logins per address, and without it every
        browser would share the gateway's one count (five bad passwords lock all out)."""
        if self.settings.auth_url:
            # The auth service trusts X-Forwarded-For from inside the deployment
            # (uvicorn --forwarded-allow-ips); one value, never the browser's own chain.
            headers = {"X-Forwarded-For": caller} if caller else None
            return httpx.AsyncClient(base_url=self.settings.auth_url, headers=headers,
                                     timeout=10)
        return self._in_process(caller)

    def history_client(self) -> httpx.AsyncClient:
        if self.settings.history_url:
            return httpx.AsyncClient(base_url=self.settings.history_url, timeout=10)
        return self._in_process()

    async def profile(self, principal: Principal, token: str | None
                      ) -> dict[str, Any] | None:
        """The caller's profile (custom instructions, language), cached for `profile_ttl`.

        The profile only shapes answers, so an auth outage must not stop chat: the last
        profile fetched serves however old it is, and a user never fetched goes without."""
        if token is None or self.verifier is None:
            return None
        cached = self._profiles.get(principal.user_id)
        if cached and time.monotonic() - cached[0] < self.profile_ttl:
            return cached[1]
        try:
            profile = await self._fetch_profile(token)
        except httpx.HTTPError as exc:
            log.warning("auth service unreachable for the profile (%r): %s", exc,
                        "using the last one fetched" if cached else "answering without one")
            return cached[1] if cached else None
        if profile is not None:
            self._profiles[principal.user_id] = (time.monotonic(), profile)
        return profile

    async def _fetch_profile(self, token: str) -> dict[str, Any] | None:
        async with self.auth_client() as client:
            response = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
        if response.is_server_error:  # a proxy's 502 is an outage like a refused connection
            response.raise_for_status()
        if response.status_code != 200:
            return None
        body = response.json()
        return {k: body.get(k) for k in PROFILE_FIELDS}

    def tool_services(self) -> dict[str, Any]:
        """What tools may use of the services: the reports tool reads history (and recall
        rebuilds a thread Redis lost from it)."""
        from server.report_source import HistoryDatabaseReader, HistoryHttpReader

        if self.history is not None:
            return {"history": HistoryDatabaseReader(self.history)}
        if self.settings.history_url:
            return {"history": HistoryHttpReader(self.settings.history_url)}
        return {}

    def forget_profile(self, user_id: str) -> None:
        self._profiles.pop(user_id, None)

    async def _after_profile_change(self, request: Request) -> AsyncIterator[None]:
        """Mounted here, the auth service's `PATCH /auth/me` drops the caller's cached
        profile once it has saved the new one, so the next answer follows the change. (A
        separate auth service is called past this server: there the cached profile ages
        out within `profile_ttl`.)"""
        yield  # the route runs; a refused update raises here, and nothing changed
        if request.method != "PATCH" or request.url.path != "/auth/me" or not self.verifier:
            return
        token = presented_token(request.headers, request.cookies)
        try:
            principal = self.verifier.verify(token) if token else None
        except InvalidToken:
            return
        if principal is not None:
            self.forget_profile(principal.user_id)

    @asynccontextmanager
    async def running(self, redis_url: str | None) -> AsyncIterator[None]:
        """Migrate the mounted services' databases and run the history consumer."""
        async with AsyncExitStack() as stack:
            if self.auth is not None:
                await asyncio.to_thread(self.auth.start)
                stack.push_async_callback(self.auth.aclose)
            if self.history is not None:
                await asyncio.to_thread(self.history.start)
                stack.callback(self.history.close)
                if redis_url:
                    await stack.enter_async_context(consumer_running(redis_url, self.history))
            yield


def embedded_auth_settings(settings: Settings) -> AuthSettings:
    """The mounted auth service's settings, from the platform's own."""
    return AuthSettings(
        database_url=settings.auth_database_url or settings.sqlite_url("auth.db"),
        keys_dir=settings.resolved_data_dir / "keys", issuer=settings.auth_issuer,
        audience=settings.auth_audience, access_ttl_seconds=settings.access_ttl_seconds,
        redis_url=settings.redis_url)


def build_services(settings: Settings) -> Services:
    if not settings.auth_enabled:
        return Services(settings=settings, verifier=None)
    if settings.auth_url:  # distributed: the services run elsewhere
        jwks = url_jwks(f"{settings.auth_url}/auth/.well-known/jwks.json")
        return Services(settings=settings, verifier=TokenVerifier(
            jwks, settings.auth_issuer, settings.auth_audience))
    auth = build_auth(embedded_auth_settings(settings))
    history = build_history(HistorySettings(
        database_url=settings.history_database_url or settings.sqlite_url("history.db"),
        redis_url=settings.redis_url, stream=settings.turn_stream, block_ms=500),
        auth.verifier)
    return Services(settings=settings, verifier=auth.verifier, auth=auth, history=history)
