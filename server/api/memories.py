"""`/memories`: a user adds, lists, searches and deletes their own long-term memories."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Query, Response
from pydantic import BaseModel, Field, field_validator

from server.api.deps import CurrentUser, PlatformDep
from services.timestamps import UtcDateTime

router = APIRouter(prefix="/memories", tags=["memories"])

MAX_ITEMS = 500  # per request: an import sends several (the body limit applies too)
MAX_TEXT_CHARS = 16_000  # a memory is recalled into a prompt whole
MAX_METADATA_BYTES = 4_000


class MemoryOut(BaseModel):
    id: str
    text: str
    created_at: UtcDateTime
    metadata: dict[str, Any]
    score: float | None = None  # relevance in [0, 1] when searched
    similarity: float | None = None  # cosine to the query, when found by meaning


class MemoryIn(BaseModel):
    """One memory to keep: "remember this", or one item of an import."""

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = Field(
        default=None, description="When it was said (an import keeps the original time); "
                                  "default now. A time without a zone is UTC.")

    @field_validator("text")
    @classmethod
    def not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text is blank: give the words to remember")
        return text

    @field_validator("metadata")
    @classmethod
    def small_metadata(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(metadata, default=str)) > MAX_METADATA_BYTES:
            raise ValueError(f"metadata over {MAX_METADATA_BYTES} bytes of JSON")
        speaker = metadata.get("speaker")
        if speaker is not None and not isinstance(speaker, str):
            raise ValueError("metadata.speaker must be a string (who said it)")
        return metadata

    @field_validator("created_at")
    @classmethod
    def not_in_the_future(cls, when: datetime | None) -> datetime | None:
        if when is None:
            return None
        aware = when if when.tzinfo else when.replace(tzinfo=UTC)
        if aware.timestamp() > datetime.now(UTC).timestamp() + 86_400:
            raise ValueError("created_at is in the future")
        return aware


def _memory(platform: Any) -> Any:
    if platform.memory is None:
        raise HTTPException(404, "long-term memory is off on this server (PARLEY_MEMORY_ENABLED)")
    return platform.memory


@router.post("", response_model=list[MemoryOut], status_code=201)
async def add_memories(
    platform: PlatformDep, user: CurrentUser,
    items: Annotated[list[MemoryIn], Body(min_length=1, max_length=MAX_ITEMS)],
) -> list[MemoryOut]:
    """Keeps each item as a memory of the caller (a text already kept is returned as it
    is). Every item is checked before any is stored: a bad one stores nothing."""
    memory = _memory(platform)
    records = await memory.add(
        user.user_id, [item.text for item in items],
        [{"kind": "note", **item.metadata} for item in items],
        created_at=[item.created_at for item in items])
    return [MemoryOut(id=r.id, text=r.text, created_at=r.created_at, metadata=dict(r.metadata))
            for r in records]


@router.get("", response_model=list[MemoryOut])
async def list_memories(
    platform: PlatformDep, user: CurrentUser,
    query: Annotated[str | None, Query(max_length=2000, description=(
        "Search by meaning and words instead of listing: best first, with scores"))] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    mode: Annotated[Literal["hybrid", "dense", "lexical"], Query(
        description="hybrid (default), by meaning only, or by words only")] = "hybrid",
) -> list[MemoryOut]:
    memory = _memory(platform)
    if query is not None:
        if not query.strip():
            raise HTTPException(422, "query is empty: give words to search for, or leave it out")
        found = await memory.search(user.user_id, query, k=limit, mode=mode)
        return [MemoryOut(id=m.record.id, text=m.record.text, created_at=m.record.created_at,
                          metadata=dict(m.record.metadata), score=round(m.score, 4),
                          similarity=None if m.similarity is None else round(m.similarity, 4))
                for m in found]
    records = await memory.list(user.user_id, limit=limit, offset=offset)
    return [MemoryOut(id=r.id, text=r.text, created_at=r.created_at, metadata=dict(r.metadata))
            for r in records]


@router.delete("/{memory_id}", status_code=204)
async def delete_memory(memory_id: str, platform: PlatformDep, user: CurrentUser) -> Response:
    if not await _memory(platform).delete(user.user_id, memory_id):
        raise HTTPException(404, f"no memory {memory_id!r}")
    return Response(status_code=204)


@router.delete("")
async def clear_memories(platform: PlatformDep, user: CurrentUser) -> dict[str, int]:
    return {"deleted": await _memory(platform).clear(user.user_id)}
