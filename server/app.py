"""The FastAPI application factory: routes, middleware and the platform's lifecycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, nullcontext

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from agents.catalog import load_agents
from server.admission import TurnSlots
from server.agent_protocol.service import running as live_runs
from server.api import include_routes
from server.api import mcp as mcp_api
from server.api.chat import TURN_HEADER
from server.api.errors import install_error_handlers
from server.api.openapi import document_errors
from server.approval.expiry import expiring, note_expiry
from server.csrf import CrossSiteGuard
from server.gateway import build_services
from server.gc_tuning import long_lived_heap
from server.limits import BodySizeLimit
from server.logs import RequestContext
from server.metrics import Metrics
from server.platform import Platform, build_platform
from server.ratelimit import RateLimiter
from server.runner import Runner
from server.settings import Settings
from server.tracing import flush_traces, tracing_status
from services.http_metrics import MetricsMiddleware
from tools.apertium import translation_status

log = logging.getLogger(__name__)

PlatformFactory = Callable[..., Awaitable[Platform]]  # (settings, *, tool_services)


def expiry_sweep(settings: Settings) -> float:
    """How often a replica looks for expired approvals: a quarter of their time, so one
    is rejected soon after it expires, but at most every 30 s."""
    return min(30.0, max(0.1, settings.approval_timeout_seconds / 4))


def create_app(settings: Settings, *, platform_factory: PlatformFactory | None = None) -> FastAPI:
    services = build_services(settings)
    factory = platform_factory or build_platform

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        platform = await factory(settings, tool_services=services.tool_services(),
                                 observe_recall=metrics.recall_seconds.observe)
        try:
            app.state.rate_limiter = RateLimiter(
                platform.redis, settings.rate_limit_per_minute, settings.rate_limit_burst,
                allow_when_down=settings.rate_limit_when_redis_down == "allow")
            app.state.runner = Runner(metrics=metrics, publish=platform.publish,
                                      paused=note_expiry(platform.approvals))
            async with services.running(platform.settings.redis_url,
                                        sole_reader=platform.owns_redis), \
                    live_runs(platform, app.state.runner) as live, \
                    expiring(platform, app.state.runner, every=expiry_sweep(settings),
                             hold=live.protocol.manager.hold if live.protocol else None):
                app.state.live = live
                app.state.platform = platform
                log.info("parley ready: agents %s", ", ".join(sorted(platform.agents)))
                log.info("%s", tracing_status(settings))
                log.info("%s", translation_status(settings.translator_engine(),
                                                  settings.translation))
                async with mcp_face.running() if mcp_face else nullcontext():
                    with long_lived_heap():
                        yield
        finally:
            await platform.aclose()
            await flush_traces(settings)

    app = FastAPI(
        title="Parley",
        version="0.1.0",
        description="Tool-using agents with memory, served by LangServe and a streaming "
        "REST API.",
        lifespan=lifespan,
    )
    # What the routes' dependencies (server/api/deps.py) read; nothing else reads it.
    app.state.settings = settings
    metrics = Metrics()
    app.state.metrics = metrics
    app.state.services = services
    app.state.turn_slots = TurnSlots(settings.max_concurrent_turns, settings.turn_wait_seconds)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(CrossSiteGuard, trusted_origins=settings.cors_origins)
    app.add_middleware(RequestContext)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    if settings.cors_origins:
        # Browsers hide other response headers from scripts: useStream reads the run's id
        # from Content-Location and reconnects to Location; a /chat/stream client resumes
        # with X-Turn-Id.
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_credentials=True, allow_methods=["*"], allow_headers=["*"],
                           expose_headers=["Content-Location", "Location", TURN_HEADER])
    install_error_handlers(app)
    document_errors(app)
    services.include(app)
    specs = load_agents(settings.agents_file, settings.agent_tools)
    include_routes(app, sorted(specs))
    # Parley's agents over MCP (server/api/mcp.py); its session manager runs in the lifespan.
    mcp_face = mcp_api.mount(app, specs) if settings.mcp_serve else None
    return app
