"""What the history API and the turn stream carry."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.timestamps import UtcDateTime

_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def _check_id(value: str, what: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError(f"{what} must be 1-128 letters, digits or '_.:-'")
    return value


class MessageIn(BaseModel):
    id: str = Field(description="Message id, unique among the user's messages; posting it "
                               "again changes nothing.")
    role: Literal["user", "assistant", "tool", "system"]
    content: str = Field(max_length=1_000_000)
    name: str | None = Field(default=None, max_length=128)
    tool_call_id: str | None = Field(default=None, max_length=128)
    meta: dict[str, Any] | None = None
    created_at: datetime | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _check_id(value, "message id")

    @field_validator("content", "name", "tool_call_id", "meta")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return without_nul(value)


def without_nul(value: Any) -> Any:
    """NUL characters as U+FFFD, in text and in any string of a JSON value. PostgreSQL's
    text cannot hold NUL, SQLite's can: a message is stored the same way in both shapes,
    and answered the same way when read back."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value


class MessagesIn(BaseModel):
    thread_id: str
    agent: str | None = None
    messages: list[MessageIn] = Field(min_length=1, max_length=500)

    @field_validator("thread_id")
    @classmethod
    def _thread(cls, value: str) -> str:
        return _check_id(value, "thread_id")


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    thread_id: str
    role: str
    content: str
    name: str | None
    tool_call_id: str | None
    meta: dict[str, Any] | None
    created_at: UtcDateTime


class MessagePage(BaseModel):
    messages: list[MessageOut]
    next_before: str | None = Field(
        description="Pass as `before` for the next (older) page; null on the last page.")


class ThreadOut(BaseModel):
    id: str
    title: str
    agent: str | None
    message_count: int
    created_at: UtcDateTime
    updated_at: UtcDateTime


class ThreadPatch(BaseModel):
    title: str = Field(min_length=1, max_length=200)


class StoredCount(BaseModel):
    stored: int
    duplicates: int


class TurnRecord(BaseModel):
    """One finished chat turn, as the agent server publishes it to the turn stream."""

    # Bounded as the database's columns are, so an oversized turn is refused when it is read
    # from the stream (and dead-lettered), not by the database in the middle of a batch.
    event_id: str
    user_id: str = Field(min_length=1, max_length=64)
    thread_id: str = Field(min_length=1, max_length=128)
    agent: str | None = Field(default=None, max_length=40)
    messages: list[MessageIn]
    created_at: datetime | None = None


class ThreadDeletion(BaseModel):
    """A thread its user deleted, sent down the turn stream rather than applied at once:
    the consumer meets it after every turn of the thread published before it, so a turn
    still waiting in the stream cannot bring the thread back."""

    event_id: str
    user_id: str = Field(min_length=1, max_length=64)
    thread_id: str = Field(min_length=1, max_length=128)
