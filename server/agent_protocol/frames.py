"""The Agent Protocol's stream: the runner's events as the SSE events LangGraph's clients
parse, for the stream modes the client asked for.

    metadata {"run_id", "attempt"}           first
    values | updates | messages | custom | events | debug | tasks | checkpoints | tools
    error {"error", "message"}               when the run failed
    end                                      last, no data
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from langchain_core.messages import AIMessageChunk, BaseMessage

from server.agent_protocol.serde import dumps, public_config
from server.runner import ChatEvent, Failed, StreamPart, ToolFinished, ToolStarted

# What a client may ask for, and the LangGraph stream mode each needs from the runner.
CLIENT_MODES: dict[str, str | None] = {
    "values": "values", "updates": "updates", "messages-tuple": "messages",
    "messages": "messages", "custom": "custom", "events": "events", "debug": "debug",
    "tasks": "tasks", "checkpoints": "checkpoints", "tools": None,  # from Parley's events
}
# The nodes whose messages make up the answer: recall's restored history and the
# summary fold in remember are the platform's own.
ANSWER_NODES = frozenset({"agent", "tools", "step_limit"})
ERROR_NAMES = {"model": "ModelError", "store": "StoreUnavailable", "overload": "Overloaded",
               "internal": "InternalError"}

Emit = Callable[[str, bytes], object]


def passthrough(modes: Iterable[str]) -> frozenset[str]:
    """The runner's stream modes for the client's; "values" always (a run's result)."""
    return frozenset({"values"} | {m for c in modes if (m := CLIENT_MODES.get(c))})


class Frames:
    """Formats one run's events; `emit(event, data)` gets each SSE event."""

    def __init__(self, modes: Iterable[str], emit: Emit, *, thread_id: str | None) -> None:
        self.modes = frozenset(modes)
        self.emit = emit
        self.thread_id = thread_id
        self.values: Any = None  # the last state: what `runs/wait` answers
        self.failure: Failed | None = None
        self._partial: dict[str, AIMessageChunk] = {}

    def start(self, run_id: str) -> None:
        self.emit("metadata", dumps({"run_id": run_id, "attempt": 1}))

    def error(self, failure: Failed) -> None:
        self.failure = failure
        self.emit("error", dumps(error_body(failure)))

    def result(self) -> bytes:
        """What `runs/wait` answers: the last state (with `__interrupt__` when the run
        paused, as LangGraph's values stream has it), or `{"__error__"}`."""
        if self.failure is not None:
            return dumps({"__error__": error_body(self.failure)})
        return dumps(self.values if self.values is not None else {})

    def end(self) -> None:
        self.emit("end", b"")

    def add(self, event: ChatEvent) -> None:
        if isinstance(event, StreamPart):
            self._part(event.mode, event.data)
        elif isinstance(event, Failed):
            self.error(event)
        elif "tools" in self.modes and isinstance(event, ToolStarted | ToolFinished):
            self.emit("tools", dumps(_tool_event(event)))

    def _part(self, mode: str, data: Any) -> None:
        if mode == "values":
            self.values = data
            if "values" in self.modes:
                self.emit("values", dumps(data))
        elif mode == "messages":
            message, meta = data
            if meta.get("langgraph_node") not in ANSWER_NODES:
                return
            if "messages-tuple" in self.modes:
                self.emit("messages", dumps([message, meta]))
            if "messages" in self.modes:
                self._legacy_message(message, meta)
        elif mode in ("debug", "tasks", "checkpoints"):
            if mode in self.modes:
                self.emit(mode, dumps(self._public(data)))
        elif mode in self.modes:  # updates, custom, events
            self.emit(mode, dumps(data))

    def _legacy_message(self, message: BaseMessage, meta: dict[str, Any]) -> None:
        """LangGraph Server's older "messages" mode: the message so far as it grows, and
        messages that did not stream whole."""
        if not message.id:
            return
        if not isinstance(message, AIMessageChunk):
            self.emit("messages/complete", dumps([message]))
            return
        grown = self._partial.get(message.id)
        if grown is None:
            self.emit("messages/metadata", dumps({message.id: {"metadata": meta}}))
            grown = message
        else:
            grown = grown + message
        self._partial[message.id] = grown
        self.emit("messages/partial", dumps([grown]))

    def _public(self, data: Any) -> Any:
        """Debug, task and checkpoint events name the client's thread, not the
        checkpointer's key."""
        if not isinstance(data, dict):
            return data
        clean = dict(data)
        for key in ("config", "parent_config"):
            if key in clean:
                clean[key] = public_config(clean[key], self.thread_id)
        if isinstance(clean.get("payload"), dict):
            clean["payload"] = self._public(clean["payload"])
        return clean


def error_body(failure: Failed) -> dict[str, Any]:
    return {"error": ERROR_NAMES.get(failure.kind, "Error"), "message": failure.message}


def _tool_event(event: ToolStarted | ToolFinished) -> dict[str, Any]:
    if isinstance(event, ToolStarted):
        return {"event": "on_tool_start", "toolCallId": event.call_id, "name": event.tool,
                "input": event.args}
    if event.status == "error":
        return {"event": "on_tool_error", "toolCallId": event.call_id, "name": event.tool,
                "error": event.output}
    return {"event": "on_tool_end", "toolCallId": event.call_id, "name": event.tool,
            "output": event.output}
