"""JSON as LangGraph's clients read it: messages as their `model_dump()` (what LangGraph
Server sends), interrupts as `{"value", "id"}`, checkpoints named by the thread id the
client knows, never the checkpointer's `<user_id>:<thread_id>` key."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from langgraph.types import Interrupt


def _default(value: Any) -> Any:
    if isinstance(value, Interrupt):
        return {"value": value.value, "id": value.id}
    if hasattr(value, "model_dump") and not isinstance(value, type):
        return value.model_dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    # Whatever else a callback event carries (a run's config, a callable): named only.
    return f"<{type(value).__name__}>"


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default,
                        option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)


def jsonable(value: Any) -> Any:
    """`value` as plain JSON types (for a response model that FastAPI encodes)."""
    return orjson.loads(dumps(value))


def public_checkpoint(config: Mapping[str, Any] | None, thread_id: str | None
                      ) -> dict[str, Any] | None:
    """A checkpoint config as the client names it: its own thread id."""
    if not config:
        return None
    configurable = config.get("configurable") or {}
    if not configurable.get("checkpoint_id"):
        return None
    return {"thread_id": thread_id, "checkpoint_ns": configurable.get("checkpoint_ns", ""),
            "checkpoint_id": configurable["checkpoint_id"],
            "checkpoint_map": configurable.get("checkpoint_map")}


_PRIVATE_CONFIG = ("callbacks", "metadata", "run_name", "tags")


def public_config(config: Any, thread_id: str | None) -> Any:
    """A run config inside a debug or checkpoint event, with the client's thread id and
    without LangGraph's internal keys."""
    if not isinstance(config, Mapping):
        return config
    configurable = {k: v for k, v in (config.get("configurable") or {}).items()
                    if not str(k).startswith("__")}
    if "thread_id" in configurable:
        configurable["thread_id"] = thread_id
    return {**{k: v for k, v in config.items() if k not in _PRIVATE_CONFIG},
            "configurable": configurable}
