"""Running tool calls: a timeout per call, tool events to the stream, errors as messages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langgraph.config import get_stream_writer
from langgraph.errors import GraphBubbleUp
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command

from graphs.approval import APPROVAL_META

Execute = Callable[[ToolCallRequest], Awaitable[ToolMessage | Command]]


def describe_error(error: Exception) -> str:
    """What the model reads when a tool fails: enough to explain it or try another way."""
    if isinstance(error, TimeoutError):
        return "Error: the tool took too long and was stopped. Tell the user it timed out."
    message = str(error) or type(error).__name__
    return f"Error: {message}. Tell the user what went wrong, or try different arguments."


def make_tool_node(tools: Sequence[BaseTool], *, timeout: float) -> ToolNode:
    async def run_with_timeout(request: ToolCallRequest, execute: Execute) -> Any:
        call = request.tool_call
        writer = _writer()
        writer({"event": "tool_start", "tool": call["name"], "call_id": call["id"],
                "args": call["args"]})
        started = time.perf_counter()
        status = "ok"
        try:
            result = await asyncio.wait_for(execute(request), timeout)
        except GraphBubbleUp:  # interrupt() in a tool: the run pauses, nothing failed
            raise
        except Exception as exc:
            status = "error"
            result = ToolMessage(content=describe_error(exc), name=call["name"],
                                 tool_call_id=call["id"], status="error")
        if isinstance(result, ToolMessage) and result.status == "error":
            status = "error"
        if isinstance(result, ToolMessage) and (record := _decision(request)) is not None:
            # History keeps the person's decision beside the result of the call it let run.
            result.response_metadata = {**result.response_metadata, APPROVAL_META: record}
        writer({"event": "tool_end", "tool": call["name"], "call_id": call["id"],
                "status": status, "output": _text(result),
                "duration_ms": round((time.perf_counter() - started) * 1000, 1)})
        return result

    return ToolNode(list(tools), handle_tool_errors=describe_error,
                    awrap_tool_call=run_with_timeout)


def _decision(request: ToolCallRequest) -> dict[str, Any] | None:
    state = request.state if isinstance(request.state, dict) else {}
    record: dict[str, Any] | None = (state.get("decisions") or {}).get(request.tool_call["id"])
    return record


def _writer() -> Callable[[Any], None]:
    try:
        return get_stream_writer()
    except RuntimeError:  # outside a graph run, e.g. a tool node tested alone
        return lambda _event: None


def _text(result: Any) -> str:
    if isinstance(result, ToolMessage):
        return result.text if hasattr(result, "text") else str(result.content)
    return str(result)
