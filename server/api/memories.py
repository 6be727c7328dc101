"""`/memories`: a user lists, searches and deletes their own long-term memories."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel

from server.api.deps import CurrentUser, PlatformDep
from services.timestamps import UtcDateTime

router = APIRouter(prefix="/memories", tags=["memories"])


class MemoryOut(BaseModel):
    id: str
    text: str
    created_at: UtcDateTime
    metadata: dict[str, Any]
    score: float | None = None


def _memory(platform: Any) -> Any:
    if platform.memory is None:
        raise HTTPException(404, "long-term memory is off on this server (PARLEY_MEMORY_ENABLED)")
    return platform.memory


@router.get("", response_model=list[MemoryOut])
async def list_memories(
    platform: PlatformDep, user: CurrentUser,
    query: Annotated[str | None, Query(max_length=2000,
                                       description="Search by meaning instead of listing")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[MemoryOut]:
    memory = _memory(platform)
    if query is not None:
        if not query.strip():
            raise HTTPException(422, "query is empty: give words to search for, or leave it out")
        found = await memory.search(user.user_id, query, k=limit)
        return [MemoryOut(id=m.record.id, text=m.record.text, created_at=m.record.created_at,
                          metadata=dict(m.record.metadata), score=round(m.score, 4))
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
