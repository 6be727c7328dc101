"""A thread's state, its kept history and state updates, as the Agent Protocol shows them.
These read and write checkpoints; none runs the graph (runs go through the runner)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.constants import INTERRUPT
from langgraph.types import StateSnapshot

from graphs.builder import TurnGraph
from graphs.context import thread_config
from graphs.state import AgentState
from server.agent_protocol.serde import jsonable, public_checkpoint

STATE_KEYS = frozenset(AgentState.__annotations__)


def _config(user_id: str, thread_id: str, checkpoint_id: str | None = None
            ) -> RunnableConfig:
    config = thread_config(user_id, thread_id)
    if checkpoint_id:
        config["configurable"]["checkpoint_id"] = checkpoint_id
    return config


def empty_state(thread_id: str) -> dict[str, Any]:
    """A thread with no checkpoint yet (made, never run)."""
    return {"values": {}, "next": [], "tasks": [], "metadata": {}, "created_at": None,
            "checkpoint": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": None,
                           "checkpoint_map": None},
            "parent_checkpoint": None, "interrupts": [], "checkpoint_id": None,
            "parent_checkpoint_id": None}


def as_thread_state(snapshot: StateSnapshot, thread_id: str) -> dict[str, Any]:
    checkpoint = public_checkpoint(snapshot.config, thread_id)
    parent = public_checkpoint(snapshot.parent_config, thread_id)
    tasks = [{"id": task.id, "name": task.name, "path": list(task.path),
              "error": str(task.error) if task.error else None,
              "interrupts": list(task.interrupts), "checkpoint": None, "state": None,
              "result": task.result} for task in snapshot.tasks]
    return jsonable({
        "values": snapshot.values, "next": list(snapshot.next), "tasks": tasks,
        "metadata": snapshot.metadata, "created_at": snapshot.created_at,
        "checkpoint": checkpoint, "parent_checkpoint": parent,
        "interrupts": list(snapshot.interrupts),
        "checkpoint_id": checkpoint["checkpoint_id"] if checkpoint else None,
        "parent_checkpoint_id": parent["checkpoint_id"] if parent else None})


async def get_state(graph: TurnGraph, user_id: str, thread_id: str,
                    checkpoint_id: str | None = None) -> dict[str, Any] | None:
    """The thread's latest state (or a kept checkpoint's); None when `checkpoint_id` is
    not kept, an empty state when the thread has none yet."""
    snapshot = await graph.aget_state(_config(user_id, thread_id, checkpoint_id))
    if snapshot.created_at is None:
        return None if checkpoint_id else empty_state(thread_id)
    return as_thread_state(snapshot, thread_id)


async def get_history(graph: TurnGraph, user_id: str, thread_id: str, *, limit: int,
                      before: str | None = None, metadata: Mapping[str, Any] | None = None,
                      checkpoint_id: str | None = None) -> list[dict[str, Any]]:
    """The kept checkpoints, newest first."""
    before_config = _config(user_id, thread_id, before) if before else None
    return [as_thread_state(s, thread_id) async for s in graph.aget_state_history(
        _config(user_id, thread_id, checkpoint_id), limit=limit, before=before_config,
        filter=dict(metadata) if metadata else None)]


async def update_state(graph: TurnGraph, user_id: str, thread_id: str, values: Any, *,
                       as_node: str | None = None, checkpoint_id: str | None = None
                       ) -> dict[str, Any]:
    """Write `values` as if node `as_node` had (a new checkpoint); the new checkpoint."""
    config = await graph.aupdate_state(_config(user_id, thread_id, checkpoint_id), values,
                                       as_node=as_node)
    return {"checkpoint": public_checkpoint(config, thread_id)}


async def latest_values(checkpointer: Any, user_id: str, thread_id: str
                        ) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The thread's latest values and its pending interrupts by task, read from its
    checkpoint (for thread listings, where building a whole state per thread would cost
    more)."""
    saved = await checkpointer.aget_tuple(thread_config(user_id, thread_id))
    if saved is None:
        return {}, {}
    channels = saved.checkpoint.get("channel_values", {})
    values = {k: v for k, v in channels.items() if k in STATE_KEYS}
    interrupts: dict[str, list[Any]] = {}
    for task_id, channel, value in saved.pending_writes or ():
        if channel == INTERRUPT:
            interrupts.setdefault(task_id, []).extend(
                value if isinstance(value, list | tuple) else [value])
    return jsonable(values), jsonable(interrupts)
