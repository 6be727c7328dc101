"""The gateway's view of the auth and history services: mounted in this process on SQLite
(embedded), or reached over HTTP with tokens checked against the auth service's JWKS
(distributed). Same code, a setting apart."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from server import caller
from server.settings import Settings
from services.auth import crud
from services.auth.context import AuthContext, build_auth
from services.auth.routes import build_router as auth_router
from services.auth.routes import read_mcp_credential
from services.auth.settings import AuthSettings
from services.history.consumer import consumer_running
from services.history.context import HistoryContext, build_history
from services.history.routes import build_router as history_router
from services.history.settings import HistorySettings
from services.tokens import InvalidToken, Principal, TokenVerifier, url_jwks

log = logging.getLogger(__name__)

PROFILE_FIELDS = ("display_name", "preferred_language", "custom_instructions")


@dataclass
class Services:
    settings: Settings
    verifier: TokenVerifier | None
    auth: AuthContext | None = None  # set when mounted here
    history: HistoryContext | None = None
    profile_ttl: float = 60.0  # seconds before a cached profile is fetched again
    profile_fetches: int = 8  # profile reads at once: a burst queues here, not in a DB pool
    _profiles: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    _loading: dict[str, asyncio.Future[dict[str, Any] | None]] = field(default_factory=dict)
    _fetch_slots: asyncio.Semaphore | None = None
    # The app the mounted services are served by: embedded, they are called through it.
    _app: FastAPI | None = field(default=None, repr=False)
    # Access tokens the auth service gave for API keys, by the key's hash: (when, token).
    _keyed: dict[str, tuple[float, str]] = field(default_factory=dict, repr=False)

    def include(self, app: FastAPI) -> None:
        self._app = app
        if self.auth is not None:
            app.include_router(auth_router(self.auth))
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

        Concurrent requests of one user share one read, and reads run a few at a time, so
        a burst of users queues here rather than exhausting the auth database's pool. The
        profile only shapes answers, so a failure to read it must not stop chat: the last
        profile read serves however old it is, and a user never read goes without."""
        if token is None or self.verifier is None:
            return None
        user_id = principal.user_id
        cached = self._profiles.get(user_id)
        if cached and time.monotonic() - cached[0] < self.profile_ttl:
            return cached[1]
        loading = self._loading.get(user_id)
        if loading is None:
            loading = asyncio.ensure_future(self._read_profile(user_id, token))
            self._loading[user_id] = loading
            loading.add_done_callback(lambda _done: self._loading.pop(user_id, None))
        try:
            # Shielded: one caller going away does not cancel the read the others wait on.
            profile = await asyncio.shield(loading)
        except Exception as exc:
            log.warning("could not read the profile (%s: %s): %s", type(exc).__name__, exc,
                        "using the last one read" if cached else "answering without one")
            return cached[1] if cached else None
        if profile is not None:
            self._profiles[user_id] = (time.monotonic(), profile)
        return profile

    async def _read_profile(self, user_id: str, token: str) -> dict[str, Any] | None:
        if self._fetch_slots is None:
            self._fetch_slots = asyncio.Semaphore(self.profile_fetches)
        async with self._fetch_slots:
            if self.auth is not None:  # mounted here: read its database, no HTTP round
                return await asyncio.to_thread(_profile_row, self.auth, user_id)
            return await self._fetch_profile(token)

    async def _fetch_profile(self, token: str) -> dict[str, Any] | None:
        async with self.auth_client() as client:
            response = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
        if response.is_server_error:  # a proxy's 502 is an outage like a refused connection
            response.raise_for_status()
        if response.status_code != 200:
            return None
        body = response.json()
        return {k: body.get(k) for k in PROFILE_FIELDS}

    async def access_for_api_key(self, key: str) -> str:
        """An access token for a personal API key, from the auth service, which alone
        knows the keys; everything past the gateway then sees an access token as usual.
        Asked again after `api_key_cache_seconds`, so a revoked key stops working within
        that. Raises InvalidToken for a key the auth service refuses, httpx.HTTPError when
        it does not answer."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        cached = self._keyed.get(digest)
        if cached and time.monotonic() - cached[0] < self.settings.api_key_cache_seconds:
            return cached[1]
        async with self.auth_client() as client:
            response = await client.post("/auth/api-keys/exchange", headers={"x-api-key": key})
        if response.status_code in (401, 403):
            self._keyed.pop(digest, None)
            raise InvalidToken(str(response.json().get("detail", "API key refused")))
        response.raise_for_status()
        token = str(response.json()["access_token"])
        if len(self._keyed) >= 4096:  # keys seen long ago go first
            for stale in sorted(self._keyed, key=lambda d: self._keyed[d][0])[:1024]:
                self._keyed.pop(stale, None)
        self._keyed[digest] = (time.monotonic(), token)
        return token

    async def mcp_credential(self, user_id: str, server: str) -> str | None:
        """The user's own credential for an MCP server (docs/mcp.md), or None. Mounted
        here: read and decrypted from the auth database. Distributed: asked of the auth
        service as the user (the request's access token) with the agent servers' service
        key (`PARLEY_AUTH_SERVICE_KEY`)."""
        if self.auth is not None:
            return await asyncio.to_thread(read_mcp_credential, self.auth, user_id, server)
        key = self.settings.auth_service_key
        token = caller.access_token.get()
        if not self.settings.auth_url or key is None or token is None:
            return None
        async with self.auth_client() as client:
            response = await client.post(
                f"/auth/mcp-credentials/{server}/reveal",
                headers={"Authorization": f"Bearer {token}",
                         "x-parley-service-key": key.get_secret_value()})
        if response.status_code == 404:
            return None
        response.raise_for_status()
        body = response.json()
        if str(body.get("user_id")) != user_id:  # the request's token is someone else's
            log.warning("refusing an MCP credential read for user %s: the token is %s's",
                        user_id, body.get("user_id"))
            return None
        return str(body["credential"])

    def forget_api_key(self, digest: str) -> None:
        """A key was revoked here: it stops working at once (behind a separate auth
        service, within `api_key_cache_seconds`)."""
        self._keyed.pop(digest, None)

    def tool_services(self) -> dict[str, Any]:
        """What tools may use of the services: the reports tool reads history (and recall
        rebuilds a thread Redis lost from it); MCP servers read the caller's credential."""
        from server.report_source import HistoryDatabaseReader, HistoryHttpReader

        found: dict[str, Any] = {}
        if self.verifier is not None:
            found["mcp_credentials"] = self.mcp_credential
        if self.history is not None:
            found["history"] = HistoryDatabaseReader(self.history)
        elif self.settings.history_url:
            found["history"] = HistoryHttpReader(self.settings.history_url)
        return found

    def forget_profile(self, user_id: str) -> None:
        """A profile changed: the next turn reads it anew."""
        self._profiles.pop(user_id, None)

    @asynccontextmanager
    async def running(self, redis_url: str | None, *, sole_reader: bool = False
                      ) -> AsyncIterator[None]:
        """Migrate the mounted services' databases and run the history consumer
        (`sole_reader`: no other consumer reads that Redis's turn stream)."""
        async with AsyncExitStack() as stack:
            if self.auth is not None:
                await asyncio.to_thread(self.auth.start)
                stack.push_async_callback(self.auth.aclose)
            if self.history is not None:
                await asyncio.to_thread(self.history.start)
                stack.callback(self.history.close)
                if redis_url:
                    await stack.enter_async_context(consumer_running(
                        redis_url, self.history, sole_reader=sole_reader))
            yield


def _profile_row(auth: AuthContext, user_id: str) -> dict[str, Any] | None:
    with auth.sessions() as session:
        profile = crud.get_profile(session=session, user_id=user_id)
    return None if profile is None else {k: profile.get(k) for k in PROFILE_FIELDS}


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
    services = Services(settings=settings, verifier=auth.verifier, auth=auth)
    # A profile changed through the mounted auth service reaches the next turn at once.
    auth.on_profile_change.append(services.forget_profile)
    auth.on_api_key_revoked.append(services.forget_api_key)
    history = build_history(HistorySettings(
        database_url=settings.history_database_url or settings.sqlite_url("history.db"),
        redis_url=settings.redis_url, stream=settings.turn_stream, block_ms=500),
        auth.verifier)
    services.history = history
    return services
