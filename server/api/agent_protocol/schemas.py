"""What the Agent Protocol's routes take, as LangGraph's SDKs send it. Unknown fields are
ignored (newer clients send more); fields Parley cannot honour get a 422 saying so."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from server.agent_protocol.frames import CLIENT_MODES
from server.api.chat import THREAD_ID, THREAD_ID_RULE


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


def _thread_id(value: str | None) -> str | None:
    if value is not None and not THREAD_ID.fullmatch(value):
        raise ValueError(THREAD_ID_RULE)
    return value


class CheckpointRef(_Body):
    thread_id: str | None = None
    checkpoint_ns: str | None = ""
    checkpoint_id: str | None = None
    checkpoint_map: dict[str, Any] | None = None


class CommandBody(_Body):
    resume: Any = None
    update: Any = None
    goto: str | list[str] | None = None


class RunCreate(_Body):
    assistant_id: str = Field(description="An agent's name or its assistant id.")
    input: dict[str, Any] | None = Field(
        default=None, description='{"messages": [...]}: the new messages; null: none.')
    command: CommandBody | None = None
    checkpoint_id: str | None = None
    checkpoint: CheckpointRef | None = None
    metadata: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    context: Any = None  # ignored: who runs the turn comes from the token
    webhook: str | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    on_disconnect: Literal["cancel", "continue"] = "continue"
    multitask_strategy: Literal["reject", "rollback", "interrupt", "enqueue"] = "reject"
    stream_mode: str | list[str] = "values"
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    after_seconds: float = Field(default=0, ge=0, le=3600)
    if_not_exists: Literal["reject", "create"] = "reject"
    on_completion: Literal["delete", "keep"] | None = None
    durability: Literal["sync", "async", "exit"] | None = None
    checkpoint_during: bool | None = None

    @field_validator("stream_mode")
    @classmethod
    def _modes(cls, value: str | list[str]) -> list[str]:
        modes = [value] if isinstance(value, str) else list(value)
        unknown = [m for m in modes if m not in CLIENT_MODES]
        if unknown:
            raise ValueError(f"unknown stream_mode {', '.join(map(repr, unknown))}: choose "
                             f"from {', '.join(sorted(CLIENT_MODES))}")
        return modes or ["values"]

    @field_validator("webhook")
    @classmethod
    def _no_webhook(cls, value: str | None) -> None:
        if value:
            raise ValueError("webhooks are not supported: follow the run with "
                             "GET .../runs/{run_id}/join or its stream instead")
        return None

    @model_validator(mode="after")
    def _one_of(self) -> RunCreate:
        if self.command is not None and self.input:
            raise ValueError("send either input or command, not both")
        return self

    @property
    def modes(self) -> list[str]:
        return self.stream_mode if isinstance(self.stream_mode, list) else [self.stream_mode]

    @property
    def wanted_checkpoint(self) -> str | None:
        configurable = (self.config or {}).get("configurable") or {}
        return (self.checkpoint.checkpoint_id if self.checkpoint else None) \
            or self.checkpoint_id or configurable.get("checkpoint_id")

    @property
    def chosen_durability(self) -> Literal["sync", "async", "exit"]:
        if self.durability is not None:
            return self.durability
        if self.checkpoint_during is False:
            return "exit"
        return "async"  # LangGraph Server's default: every step kept, so history branches


class ThreadCreate(_Body):
    thread_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    supersteps: list[Any] | None = None

    @field_validator("thread_id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        return _thread_id(value)

    @field_validator("supersteps")
    @classmethod
    def _no_supersteps(cls, value: list[Any] | None) -> None:
        if value:
            raise ValueError("supersteps are not supported: create the thread, then "
                             "POST /threads/{thread_id}/state")
        return None


class ThreadSearch(_Body):
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    ids: list[str] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"
    select: list[str] | None = None

    @field_validator("values")
    @classmethod
    def _no_values(cls, value: dict[str, Any] | None) -> None:
        if value:
            raise ValueError("searching threads by values is not supported: search by "
                             "metadata (graph_id, assistant_id) or status")
        return None


class ThreadCount(_Body):
    metadata: dict[str, Any] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None


class ThreadPatch(_Body):
    metadata: dict[str, Any] = Field(default_factory=dict)


class StateUpdate(_Body):
    values: dict[str, Any] | list[dict[str, Any]] | None = None
    as_node: str | None = None
    checkpoint_id: str | None = None
    checkpoint: CheckpointRef | None = None

    @property
    def wanted_checkpoint(self) -> str | None:
        return (self.checkpoint.checkpoint_id if self.checkpoint else None) \
            or self.checkpoint_id


class StateAt(_Body):
    checkpoint: CheckpointRef
    subgraphs: bool = False


class HistoryRequest(_Body):
    limit: int = Field(default=10, ge=1, le=1000)
    before: str | CheckpointRef | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: CheckpointRef | None = None

    @property
    def before_id(self) -> str | None:
        if isinstance(self.before, CheckpointRef):
            return self.before.checkpoint_id
        return self.before


class AssistantSearch(_Body):
    graph_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: str | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[str] | None = None
