"""Prometheus metrics of the agent server, served at `/metrics`.

One registry per app (not the process-global default), so several apps in one process, as
in tests, keep separate counts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter("parley_http_requests_total", "HTTP requests",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("parley_http_request_seconds", "HTTP request latency",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=r)
        self.turns = Counter("parley_turns_total", "Chat turns", ["agent", "outcome"],
                             registry=r)
        self.tool_calls = Counter("parley_tool_calls_total", "Tool calls", ["tool", "status"],
                                  registry=r)
        self.tool_seconds = Histogram("parley_tool_call_seconds", "Tool call latency",
                                      ["tool"], buckets=LATENCY_BUCKETS, registry=r)
        self.llm_seconds = Histogram("parley_llm_call_seconds", "Model call latency",
                                     ["provider"], buckets=LATENCY_BUCKETS, registry=r)
        self.llm_tokens = Counter("parley_llm_tokens_total", "Model tokens", ["provider", "kind"],
                                  registry=r)
        self.recall_seconds = Histogram("parley_memory_recall_seconds", "Memory recall latency",
                                        buckets=LATENCY_BUCKETS, registry=r)
        self.model_callback = ModelMetrics(self).handler
        self.stream_lag = Gauge("parley_turn_stream_pending",
                                "Turns published but not yet acknowledged by history",
                                registry=r)

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def route_of(scope: Scope) -> str:
    """The route's path template (`/agents/{name}`), not the raw path, to keep labels few.
    The router leaves the matched route in the scope once it has handled the request."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else "unmatched"


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = route_of(scope)
            method = scope.get("method", "GET")
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)


async def metrics_endpoint(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    platform = getattr(request.app.state, "platform", None)
    redis = getattr(platform, "redis", None)
    if redis is not None:  # queue lag of the turn stream, read when scraped
        try:
            pending = await redis.xpending(request.app.state.settings.turn_stream, "history")
            metrics.stream_lag.set(float(pending["pending"]))
        except Exception:
            metrics.stream_lag.set(float("nan"))
    return metrics.render()


class ModelMetrics:
    """A LangChain callback: model call latency and tokens, by provider."""

    def __init__(self, metrics: Metrics) -> None:
        from langchain_core.callbacks import BaseCallbackHandler

        outer = self

        class Handler(BaseCallbackHandler):
            def __init__(self) -> None:
                self.started: dict[object, tuple[float, str]] = {}

            def on_chat_model_start(self, serialized: dict, messages: object, *, run_id: object,
                                    **kwargs: object) -> None:
                metadata: dict[str, object] = dict(kwargs.get("metadata") or {})  # type: ignore[call-overload]
                provider = str(metadata.get("ls_provider")
                               or (serialized or {}).get("name", "unknown"))
                self.started[run_id] = (time.perf_counter(), provider)

            def on_llm_end(self, response: object, *, run_id: object, **kwargs: object) -> None:
                begun = self.started.pop(run_id, None)
                if begun is None:
                    return
                at, provider = begun
                outer.metrics.llm_seconds.labels(provider).observe(time.perf_counter() - at)
                for generations in getattr(response, "generations", []):
                    for generation in generations:
                        usage = getattr(getattr(generation, "message", None),
                                        "usage_metadata", None) or {}
                        for kind in ("input_tokens", "output_tokens"):
                            if usage.get(kind):
                                outer.metrics.llm_tokens.labels(provider, kind).inc(usage[kind])

            def on_llm_error(self, error: BaseException, *, run_id: object,
                             **kwargs: object) -> None:
                self.started.pop(run_id, None)

        self.metrics = metrics
        self.handler = Handler()
