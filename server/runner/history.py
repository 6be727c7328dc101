"""A finished turn goes to the turn stream, from which the history service stores it.
Publishing is one XADD: the history service may be down, the turn waits in Redis."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage

from graphs.approval import APPROVAL_META
from graphs.context import TurnContext
from services.history.schemas import MessageIn, TurnRecord
from services.history.stream import publish_turn

_ROLES = {"human": "user", "ai": "assistant", "tool": "tool", "system": "system"}

Publish = Callable[[TurnContext, Sequence[AnyMessage]], Awaitable[None]]


def to_history(message: AnyMessage) -> MessageIn:
    meta: dict[str, Any] | None = None
    if isinstance(message, AIMessage) and message.tool_calls:
        meta = {"tool_calls": [{"name": c["name"], "args": c["args"], "id": c["id"]}
                               for c in message.tool_calls]}
    if isinstance(message, ToolMessage) and APPROVAL_META in message.response_metadata:
        # The person's decision on the call (approve, edit, reject, respond), kept beside
        # its result.
        meta = {APPROVAL_META: message.response_metadata[APPROVAL_META]}
    return MessageIn(
        id=message.id or uuid.uuid4().hex,
        role=_ROLES.get(message.type, "system"),  # type: ignore[arg-type]
        content=message.text if hasattr(message, "text") else str(message.content),
        name=getattr(message, "name", None),
        tool_call_id=message.tool_call_id if isinstance(message, ToolMessage) else None,
        meta=meta,
    )


def turn_publisher(redis: Any, stream: str) -> Publish:
    async def publish(ctx: TurnContext, messages: Sequence[AnyMessage]) -> None:
        record = TurnRecord(event_id=ctx.turn_id or uuid.uuid4().hex, user_id=ctx.user_id,
                            thread_id=ctx.thread_id, agent=ctx.agent,
                            messages=[to_history(m) for m in messages])
        await publish_turn(redis, record, stream=stream)

    return publish
