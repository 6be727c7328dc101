"""The turn's log lines and metrics: one line and one count per turn, one per tool call,
whichever API ran it."""

from __future__ import annotations

import logging
import time

from server.metrics import Metrics
from server.runner.events import ToolFinished

log = logging.getLogger("server.turns")

Outcome = str  # "ok", "interrupted" (paused, to be resumed), "error" or "cancelled"


def record_turn_end(*, agent: str, turn_id: str, started: float, metrics: Metrics | None,
                    outcome: Outcome, failure: str | None = None) -> None:
    """When the turn failed, called while its exception is handled, so the line carries
    the traceback."""
    if metrics is not None:
        metrics.turns.labels(agent, outcome).inc()
        if failure is not None:
            metrics.turn_failures.labels(agent, failure).inc()
    failed = outcome == "error"
    log.log(logging.ERROR if failed else logging.INFO, "turn %s %s", turn_id,
            f"failed ({failure})" if failed else outcome, exc_info=failed, extra={
                "agent": agent, "turn_id": turn_id, "outcome": outcome, "failure": failure,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1)})


def record_tool_end(event: ToolFinished, *, agent: str, turn_id: str,
                    metrics: Metrics | None) -> None:
    if metrics is not None:
        metrics.tool_calls.labels(event.tool, event.status).inc()
        metrics.tool_seconds.labels(event.tool).observe(event.duration_ms / 1000)
    # Names and timing only: tool arguments and results may hold what users wrote.
    log.info("tool %s %s", event.tool, event.status, extra={
        "agent": agent, "tool": event.tool, "status": event.status, "turn_id": turn_id,
        "duration_ms": event.duration_ms})
