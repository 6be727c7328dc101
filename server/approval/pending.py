"""A paused step's approval as the APIs show it: found in a thread's checkpoint (so it
outlives a restart), or in a run's `Interrupted` event."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.constants import INTERRUPT

from graphs.approval import is_approval_request
from graphs.context import thread_config


@dataclass(frozen=True)
class Pending:
    id: str  # LangGraph's interrupt id
    request: Mapping[str, Any]  # graphs/approval.py's request

    @property
    def agent(self) -> str:
        return str(self.request.get("agent") or "")

    @property
    def call_ids(self) -> list[str]:
        return [a["id"] for a in self.request["action_requests"]]


def from_interrupts(interrupts: Iterable[Any]) -> Pending | None:
    """The approval among a run's or a state's interrupts, if one is."""
    for item in interrupts:
        value = getattr(item, "value", None)
        if isinstance(value, Mapping) and is_approval_request(value):
            return Pending(id=str(item.id), request=value)
    return None


async def find_pending(checkpointer: BaseCheckpointSaver, user_id: str, thread_id: str
                       ) -> Pending | None:
    """The approval the user's thread waits for, from its latest checkpoint's pending
    writes (whichever agent paused it). Threads are keyed by their owner, so another
    user's thread id finds nothing."""
    saved = await checkpointer.aget_tuple(thread_config(user_id, thread_id))
    if saved is None:
        return None
    interrupts: list[Any] = []
    for _task, channel, value in saved.pending_writes or ():
        if channel == INTERRUPT:
            interrupts += value if isinstance(value, list | tuple) else [value]
    return from_interrupts(interrupts)


def decide_path(thread_id: str) -> str:
    return f"/chat/threads/{quote(thread_id, safe='')}/decisions"


def view(pending: Pending, thread_id: str, decided: Iterable[str] = ()) -> dict[str, Any]:
    """The `approval` of `/chat`'s answer and `/chat/stream`'s event. `decided`: the calls
    decided one by one so far (the step goes on once the rest are)."""
    allowed = {c["action_name"]: c["allowed_decisions"]
               for c in pending.request.get("review_configs", [])}
    done = set(decided)
    return {
        "id": pending.id,
        "thread_id": thread_id,
        "turn_id": pending.request.get("turn_id"),
        "agent": pending.agent,
        "expires_at": pending.request.get("expires_at"),
        "decide": decide_path(thread_id),
        "calls": [{"call_id": a["id"], "tool": a["name"], "args": a["args"],
                   "description": a.get("description", ""),
                   "allowed_decisions": allowed.get(a["name"], [])}
                  for a in pending.request["action_requests"]],
        "decided": [c for c in pending.call_ids if c in done],
    }


def waiting_text(interrupts: Iterable[Any], thread_id: str | None = None) -> str:
    """What an API that cannot pause (OpenAI-compatible, LangServe, MCP) answers when a
    run stops for approval: which call waits, and where a person can decide. Nothing ran.
    `thread_id`: the server keeps the thread, so the call can be decided there."""
    pending = from_interrupts(interrupts)
    if pending is None:
        return "The run paused before it finished; nothing more was done."
    calls = ", ".join(f"{a['name']}({_args(a['args'])})"
                      for a in pending.request["action_requests"])
    where = (f"approve, edit or reject it with POST {decide_path(thread_id)} or in the web "
             "chat page" if thread_id is not None else
             "this API cannot ask for it: send the request through /chat or /chat/stream "
             "(then POST /chat/threads/<thread_id>/decisions), the web chat page or the "
             "Agent Protocol, where you can approve, edit or reject the call")
    return f"This needs your approval before it runs: {calls}. Nothing was done; {where}."


def _args(args: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())
