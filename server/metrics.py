"""Prometheus metrics of the agent server, served at `/metrics`: the request metrics every
app has (services/http_metrics.py) plus turns, tool calls, model calls, recall and the turn
stream's lag."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from services.http_metrics import LATENCY_BUCKETS, HttpMetrics


@dataclass
class Metrics(HttpMetrics):
    """The request metrics every app has, plus the agent server's own."""

    def __post_init__(self) -> None:
        super().__post_init__()
        r = self.registry
        self.turns = Counter("parley_turns_total", "Chat turns", ["agent", "outcome"],
                             registry=r)
        self.turns_in_progress = Gauge("parley_turns_in_progress",
                                       "Turns holding a slot now", registry=r)
        self.turns_refused = Counter("parley_turns_refused_total",
                                     "Turns refused before they started", ["reason"],
                                     registry=r)
        self.turn_failures = Counter("parley_turn_failures_total",
                                     "Failed chat turns by the part that failed",
                                     ["agent", "kind"], registry=r)
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
                                "Turns published but not yet stored by history (unread or "
                                "unacknowledged)", registry=r)



async def turn_stream_backlog(redis: Any, stream: str, group: str) -> float:
    """Turns history has not stored: those its group has not read yet (the lag) and those
    read but not acknowledged. XPENDING alone counts only the second kind, and so reads 0
    exactly when the history service is down."""
    if not await redis.exists(stream):
        return 0.0
    for info in await redis.xinfo_groups(stream):
        if _text(info.get("name")) == group:
            lag = info.get("lag")  # None when Redis cannot tell (entries deleted midway)
            if lag is None:
                return float("nan")
            return float(lag) + float(info.get("pending") or 0)
    return float(await redis.xlen(stream))  # no group yet: nothing was ever read


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ModelMetrics:
    """A LangChain callback: model call latency and tokens, by provider."""

    def __init__(self, metrics: Metrics) -> None:
        from langchain_core.callbacks import BaseCallbackHandler

        outer = self

        class Handler(BaseCallbackHandler):
            # Run in the event loop, not handed to a thread per event (what LangChain does
            # with a sync handler): each method is a dict operation. Chain, agent and
            # retriever events are not wanted at all, so LangChain need not dispatch them.
            run_inline = True
            ignore_chain = True
            ignore_agent = True
            ignore_retriever = True
            ignore_custom_event = True

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
