"""Apps wired with scripted models and test tools, in-process and on a real port."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.tools import tool

from agents.fake import ScriptedChatModel
from server.app import create_app
from server.platform import Platform, build_platform
from server.settings import Settings
from tests.support.agent_protocol import Server, api_key, scripted, settings_for
from tests.support.live import reset_sse_state, serve_in_thread
from tests.support.serve import parley_serve
from tools.registry import ToolSource


@dataclass
class Probe:
    """Shared with the test tools so a test can see what ran and what was cancelled."""

    started: threading.Event = field(default_factory=threading.Event)
    cancelled: list[str] = field(default_factory=list)
    posted: list[str] = field(default_factory=list)  # send_postcard's side effect
    # send_postcard holds until this is set, when a test sets one: its run is then under
    # way (`posting` is set) while the test sends another request.
    gate: threading.Event | None = None
    posting: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def probe() -> Probe:
    return Probe()


def tool_sources_for(probe: Probe) -> list[ToolSource]:
    @tool
    def add(a: int, b: int) -> int:
        """Add two whole numbers."""
        return a + b

    @tool
    async def wait_long(seconds: float) -> str:
        """Wait for a number of seconds."""
        probe.started.set()
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            probe.cancelled.append("wait_long")
            raise
        return "done waiting"

    @tool
    def send_postcard(to: str, text: str) -> str:
        """Send a postcard (it costs money, so the user approves each one)."""
        probe.posting.set()
        if probe.gate is not None:
            probe.gate.wait(20)
        probe.posted.append(f"{to}: {text}")
        return f"postcard sent to {to}"

    send_postcard.metadata = {"requires_approval": True}
    return [ToolSource(name="test", origin="builtin", target=[add, wait_long, send_postcard])]


AppFactory = Callable[..., Any]


@pytest.fixture
def make_app(probe: Probe, tmp_path: Path) -> AppFactory:
    """An app with a scripted model. Auth is off unless `auth_enabled=True` is passed (then
    the auth and history services are mounted, on SQLite under the test's folder)."""

    def make(script: list[Any], *, cycle: bool = True, **settings: Any) -> Any:
        settings.setdefault("auth_enabled", False)
        settings.setdefault("memory_enabled", False)
        settings.setdefault("data_dir", tmp_path / "data")
        model = ScriptedChatModel(script=script, cycle=cycle)

        async def factory(s: Settings, **kwargs: Any) -> Platform:
            return await build_platform(s, models={"fake": model},
                                        tool_sources=tool_sources_for(probe), **kwargs)

        app = create_app(Settings(llm="fake", **settings), platform_factory=factory)
        app.state.model = model
        return app

    return make


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[[Any], Any]]:
    """`async with client_for(app) as client`: the app's lifespan runs around the client."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def open_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
        reset_sse_state()
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://parley") as c:
                yield c

    yield open_client


@pytest.fixture
def live() -> Callable[[Any], Any]:
    return serve_in_thread


@pytest.fixture
def make_auth_app(make_app: AppFactory) -> AppFactory:
    """Apps with auth on: the server verifies real access tokens, issued by its auth
    service to users who registered."""

    def make(script: list[Any], **settings: Any) -> Any:
        return make_app(script, auth_enabled=True, **settings)

    return make


@pytest.fixture
def ap_server(make_auth_app: AppFactory, live: Callable[[Any], Any], redis_url: str,
              tmp_path: Path) -> Iterator[Server]:
    """Parley on a real port with Redis and auth, and users ada and bob with API keys."""
    app = make_auth_app([scripted], **settings_for(redis_url, tmp_path / "data"))
    with live(app) as url:
        yield Server(url=url, app=app, keys={u: api_key(url, u) for u in ("ada", "bob")})


@pytest.fixture
def other_replica(ap_server: Server, redis_url: str, tmp_path: Path) -> Iterator[str]:
    """A second Parley process on the same Redis and the same accounts (data folder), as
    another replica behind a load balancer is. It follows runs; it runs none here."""
    script = tmp_path / "script.json"
    script.write_text('["I am the other replica."]')
    with parley_serve(tmp_path / "data", env={
            "PARLEY_REDIS_URL": redis_url, "PARLEY_LLM": "fake",
            "PARLEY_FAKE_SCRIPT": str(script), "PARLEY_MEMORY_ENABLED": "false",
            "PARLEY_API_KEY_CACHE_SECONDS": "0"}, ready_timeout=300) as served:
        yield served.url
