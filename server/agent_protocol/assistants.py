"""Assistants are Parley's agents. Their ids are stable across restarts and replicas:
derived from the agent's name, as LangGraph Server derives its system assistants' ids
from their graph ids."""

from __future__ import annotations

import uuid
from typing import Any

_NAMESPACE = uuid.UUID("6f1c4a3e-2d7b-5e8f-9a0b-1c2d3e4f5a6b")


def assistant_id(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"parley:{name}"))


def thread_metadata(agent: str) -> dict[str, Any]:
    """What a thread of `agent` carries, so clients find it by `graph_id` or
    `assistant_id` (agent-chat-ui searches by one or the other)."""
    return {"graph_id": agent, "assistant_id": assistant_id(agent)}
