"""Long-term (semantic) memory per user: the interface every engine implements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class MemoryRecord:
    id: str
    text: str
    created_at: datetime
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoredMemory:
    record: MemoryRecord
    score: float  # cosine similarity, 1 = same meaning


class SemanticMemory(Protocol):
    """Every call names its user; no call can reach another user's memories."""

    async def add(self, user_id: str, texts: Sequence[str],
                  metadata: Mapping[str, Any] | None = None, *,
                  keys: Sequence[str] | None = None) -> list[MemoryRecord]:
        """Store texts (a text stored already is not stored twice). `keys`, one per text,
        is what is embedded and so what a search matches; by default the text itself."""
        ...

    async def search(self, user_id: str, query: str, *, k: int = 5,
                     min_score: float = 0.0) -> list[ScoredMemory]: ...

    async def list(self, user_id: str, *, limit: int = 100,
                   offset: int = 0) -> list[MemoryRecord]: ...

    async def delete(self, user_id: str, memory_id: str) -> bool: ...

    async def clear(self, user_id: str) -> int: ...
