"""What the Agent Protocol's routes share: assistants (Parley's agents), a caller's thread
or a 404, and the SSE framing LangGraph's clients parse (and what a client joining a
run's stream asks for: where to start, which modes)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from fastapi import HTTPException, Request, status
from sse_starlette.sse import EventSourceResponse

from server.agent_protocol.assistants import assistant_id
from server.agent_protocol.store import ThreadRecord
from server.live import Frame
from server.platform import Agent, Platform

CREATED = "1970-01-01T00:00:00+00:00"  # the agents are configuration: no creation date


def find_agent(platform: Platform, wanted: str) -> tuple[str, Agent]:
    """The agent an assistant id or graph id (an agent's name) names, or a 404."""
    if wanted in platform.agents:
        return wanted, platform.agents[wanted]
    for name, agent in platform.agents.items():
        if assistant_id(name) == wanted:
            return name, agent
    known = ", ".join(sorted(platform.agents))
    raise HTTPException(status.HTTP_404_NOT_FOUND,
                        f"no assistant {wanted!r}: use an agent's name ({known}) or its "
                        "assistant_id from POST /assistants/search")


def assistant_body(name: str, agent: Agent) -> dict[str, Any]:
    return {"assistant_id": assistant_id(name), "graph_id": name, "name": name,
            "description": agent.spec.description, "config": {}, "context": {},
            "metadata": {"created_by": "system"}, "version": 1, "created_at": CREATED,
            "updated_at": CREATED}


def no_thread(thread_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"Thread {thread_id!r} not found")


def thread_body(thread: ThreadRecord, values: Any = None,
                interrupts: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"thread_id": thread.thread_id, "created_at": thread.created_at,
            "updated_at": thread.updated_at, "metadata": thread.metadata,
            "status": thread.status, "values": values if values is not None else {},
            "interrupts": dict(interrupts or {}), "config": {}}


def sse_bytes(frame: Frame, event_id: str) -> bytes:
    head = b"event: " + frame.event.encode()
    data = b"\ndata: " + frame.data if frame.data else b""
    return head + data + b"\nid: " + event_id.encode() + b"\n\n"


def sse_response(frames: AsyncIterator[Frame], *, ids: Callable[[Frame], str] = lambda f:
                 str(f.seq), headers: Mapping[str, str] | None = None,
                 keep: Callable[[Frame], bool] | None = None) -> EventSourceResponse:
    async def body() -> AsyncIterator[bytes]:
        async for frame in frames:
            if keep is None or keep(frame):
                yield sse_bytes(frame, ids(frame))

    return EventSourceResponse(body(), headers=dict(headers or {}), ping=15, sep="\n")


def last_event_id(http: Request, resumable: bool) -> int | None:
    """Where a client joining a run's stream starts: after the `Last-Event-ID` it had."""
    raw = http.headers.get("last-event-id")
    if raw is None or raw == "":
        return -1 if resumable else None  # a resumable run replays from its start
    try:
        return max(-1, int(raw))
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"Last-Event-ID {raw!r} is not an event id of this run") from exc


def mode_filter(modes: list[str] | None) -> Callable[[Frame], bool] | None:
    """The frames of the stream modes a joining client asked for (and the run's own)."""
    if not modes:
        return None
    wanted = set(modes)
    if "messages-tuple" in wanted:
        wanted.add("messages")

    def keep(frame: Frame) -> bool:
        kind = frame.event.split("|")[0].split("/")[0]
        return kind in wanted or kind in ("metadata", "error", "end")

    return keep


async def nothing() -> AsyncIterator[Frame]:
    return
    yield  # an empty stream
