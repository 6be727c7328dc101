"""The FastAPI application factory: routes, middleware and the platform's lifecycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from agents.catalog import load_agents
from server.api import include_routes
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

log = logging.getLogger(__name__)

PlatformFactory = Callable[..., Awaitable[Platform]]  # (settings, *, tool_services)


def create_app(settings: Settings, *, platform_factory: PlatformFactory | None = None) -> FastAPI:
    services = build_services(settings)
    factory = platform_factory or build_platform

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        platform = await factory(settings, tool_services=services.tool_services(),
                                 observe_recall=metrics.recall_seconds.observe)
        try:
            app.state.rate_limiter = RateLimiter(platform.redis, settings.rate_limit_per_minute,
                                                 settings.rate_limit_burst)
            app.state.runner = Runner(metrics=metrics, publish=platform.publish)
            async with services.running(platform.settings.redis_url):
                app.state.platform = platform
                log.info("parley ready: agents %s", ", ".join(sorted(platform.agents)))
                log.info("%s", tracing_status(settings))
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
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestContext)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_credentials=True, allow_methods=["*"], allow_headers=["*"])
    app.exception_handler(RequestValidationError)(_validation_error)
    app.exception_handler(StarletteHTTPException)(_http_error)
    services.include(app)
    include_routes(app, sorted(load_agents(settings.agents_file, settings.agent_tools)))
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    # A browser asking for a page without a session goes to the login page instead.
    if (exc.status_code == 401 and request.method == "GET"
            and "text/html" in request.headers.get("accept", "")):
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    return await http_exception_handler(request, exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid":
            where, message = "body", "the request body is not valid JSON"
        problems.append(f"{where}: {message}")
    return JSONResponse(
        status_code=422,
        content={"detail": "; ".join(problems), "errors": [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()]},
    )
