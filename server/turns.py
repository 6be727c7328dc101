"""One chat turn as a stream of typed events, shared by `/chat`, `/chat/stream` and the
LangServe routes, so every API runs the same graph the same way."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any, Literal, cast

from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StreamMode
from pydantic import BaseModel, Field

from server import logs
from server.streams import in_own_task

log = logging.getLogger(__name__)

STREAM_MODES: list[StreamMode] = ["messages", "custom", "updates"]
QUIET_MODES: list[StreamMode] = ["custom", "updates"]  # no per-token events: cheaper

EventName = Literal["token", "tool_start", "tool_end", "message", "error", "done"]


class TurnEvent(BaseModel):
    event: EventName
    data: dict[str, Any] = Field(default_factory=dict)


def checkpoint_thread(user_id: str, thread_id: str) -> str:
    """Threads are stored under their owner, so one user can never load another's thread,
    whatever thread id they send."""
    return f"{user_id}:{thread_id}"


def new_thread_id() -> str:
    return uuid.uuid4().hex


def run_config(*, user_id: str, thread_id: str, agent: str, turn_id: str,
               profile: dict[str, Any] | None = None, new_thread: bool = False
               ) -> dict[str, Any]:
    return {
        "configurable": {
            "thread_id": checkpoint_thread(user_id, thread_id),
            "conversation_id": thread_id,
            "user_id": user_id,
            "agent": agent,
            "profile": profile,
            "new_thread": new_thread,
        },
        "metadata": {"user_id": user_id, "parley_thread_id": thread_id, "turn_id": turn_id},
        "run_name": f"parley:{agent}",
    }


async def stream_turn(
    graph: CompiledStateGraph,
    *,
    message: str,
    user_id: str,
    thread_id: str,
    agent: str,
    turn_id: str | None = None,
    profile: dict[str, Any] | None = None,
    metrics: Any = None,
    tokens: bool = True,
    new_thread: bool = False,
) -> AsyncIterator[TurnEvent]:
    """Run one turn and yield its events; the last event is always `done`, after either a
    `message` or an `error`. Cancelling the iteration cancels the run."""
    turn_id = turn_id or uuid.uuid4().hex
    # Every log line of the turn, in the graph's task and tools too, carries these.
    logs.user_id.set(user_id)
    logs.thread_id.set(thread_id)
    config = run_config(user_id=user_id, thread_id=thread_id, agent=agent, turn_id=turn_id,
                        profile=profile, new_thread=new_thread)
    if metrics is not None:
        config["callbacks"] = [metrics.model_callback]
    final: AIMessage | None = None
    started = time.perf_counter()
    try:
        # In a task of its own: when the client goes away, its running tools are cancelled.
        turn_input = {"messages": [HumanMessage(content=message)]}
        # Checkpoint once, when the run ends, instead of after every step: a turn that fails
        # midway is retried whole anyway, and each write costs a Redis round of its own.
        run = in_own_task(graph.astream(turn_input, cast(RunnableConfig, config),
                                        stream_mode=STREAM_MODES if tokens else QUIET_MODES,
                                        durability="exit"))
        async with aclosing(run):
            async for part in run:
                mode, chunk = cast(tuple[str, Any], part)
                if mode == "messages":
                    if (text := answer_token(chunk)) is not None:
                        yield TurnEvent(event="token", data={"text": text})
                elif mode == "custom" and isinstance(chunk, dict) and "event" in chunk:
                    event = chunk["event"]
                    if event == "tool_end":
                        record_tool_end(chunk, agent=agent, turn_id=turn_id, metrics=metrics)
                    yield TurnEvent(event=event, data={k: v for k, v in chunk.items()
                                                       if k != "event"})
                elif mode == "updates" and final is None:
                    found = final_message(chunk)
                    final = found[1] if found else None
                    if final is not None:  # send the answer now; memory work follows
                        yield TurnEvent(event="message", data={
                            "id": final.id, "role": "assistant", "content": final.text,
                            "thread_id": thread_id, "agent": agent})
    except Exception as exc:  # the turn fails, the stream does not: the client is told
        record_turn_end(agent=agent, turn_id=turn_id, started=started, metrics=metrics,
                        failed=True)
        yield TurnEvent(event="error", data={"message": public_error(exc)})
        yield TurnEvent(event="done", data={"turn_id": turn_id, "thread_id": thread_id})
        return
    record_turn_end(agent=agent, turn_id=turn_id, started=started, metrics=metrics)
    yield TurnEvent(event="done", data={"turn_id": turn_id, "thread_id": thread_id})


def answer_token(chunk: Any) -> str | None:
    """The text of a `messages`-mode chunk when it is a token of the agent's answer (not of
    the summary fold or a tool's own model call), else None."""
    token, meta = chunk
    if (isinstance(token, AIMessageChunk) and token.content
            and meta.get("langgraph_node") == "agent"):
        return token.text
    return None


def record_turn_end(*, agent: str, turn_id: str, started: float, metrics: Any,
                    failed: bool = False) -> None:
    """The turn's log line and count, whichever API ran it; when `failed`, called while
    its exception is handled, so the line carries the traceback."""
    outcome = "error" if failed else "ok"
    if metrics is not None:
        metrics.turns.labels(agent, outcome).inc()
    log.log(logging.ERROR if failed else logging.INFO, "turn %s %s", turn_id,
            "failed" if failed else "ok", exc_info=failed, extra={
                "agent": agent, "turn_id": turn_id, "outcome": outcome,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1)})


def record_tool_end(chunk: dict[str, Any], *, agent: str, turn_id: str, metrics: Any) -> None:
    if metrics is not None:
        metrics.tool_calls.labels(chunk["tool"], chunk["status"]).inc()
        metrics.tool_seconds.labels(chunk["tool"]).observe(chunk["duration_ms"] / 1000)
    # Names and timing only: tool arguments and results may hold what users wrote.
    log.info("tool %s %s", chunk["tool"], chunk["status"], extra={
        "agent": agent, "tool": chunk["tool"], "status": chunk["status"],
        "turn_id": turn_id, "duration_ms": chunk["duration_ms"]})


def final_message(update: Any) -> tuple[str, AIMessage] | None:
    """The node and message of the turn's final answer, when this `updates` chunk holds
    it: the agent's answer, or the note of a turn stopped at the step limit."""
    if not isinstance(update, dict):
        return None
    for node in ("agent", "step_limit"):
        for message in reversed((update.get(node) or {}).get("messages", [])):
            if isinstance(message, AIMessage) and not message.tool_calls:
                return node, message
    return None


def public_error(exc: Exception) -> str:
    # Provider errors are the usual cause; say which kind without leaking internals.
    name = type(exc).__name__
    if "Connection" in name or "Timeout" in name:
        return f"The language model could not be reached ({name}: {exc}). Try again shortly."
    return f"The turn failed ({name}): {exc}"[:500]
