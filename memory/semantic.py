"""Long-term (semantic) memory per user: the interface every engine implements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from memory.fusion import SearchMode


@dataclass(frozen=True)
class MemoryRecord:
    id: str
    text: str
    created_at: datetime
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoredMemory:
    record: MemoryRecord
    # Relevance in [0, 1]: in a hybrid search the fused rank (1 = first by meaning and by
    # words), in a dense one the cosine similarity, in a lexical one BM25 over the best's.
    score: float
    similarity: float | None = None  # cosine to the query, when the dense side found it


Metadata = Mapping[str, Any] | Sequence[Mapping[str, Any]]
When = datetime | Sequence[datetime | None] | None


class SemanticMemory(Protocol):
    """Every call names its user; no call can reach another user's memories."""

    async def add(self, user_id: str, texts: Sequence[str],
                  metadata: Metadata | None = None, *,
                  keys: Sequence[str] | None = None,
                  created_at: When = None) -> list[MemoryRecord]:
        """Store texts (a text stored already is not stored twice). `keys`, one per text,
        is what is embedded and indexed for words, and so what a search matches (with the
        text, for words); by default the text itself. `metadata` is one mapping for all
        texts or one per text; a `speaker` in it makes the memory that person's.
        `created_at` (one time, or one per text; default now) is when it was said."""
        ...

    async def search(self, user_id: str, query: str, *, k: int = 5,
                     min_score: float = 0.0, mode: SearchMode = "hybrid",
                     now: datetime | None = None) -> list[ScoredMemory]:
        """The k most relevant memories, best first. `now` anchors "last week" and the
        like (default: the current time)."""
        ...

    async def list(self, user_id: str, *, limit: int = 100,
                   offset: int = 0) -> list[MemoryRecord]: ...

    async def delete(self, user_id: str, memory_id: str) -> bool: ...

    async def clear(self, user_id: str) -> int: ...


def each_metadata(metadata: Metadata | None, count: int) -> list[dict[str, Any]]:
    """One metadata dict per text, from one shared mapping or a list of them."""
    if metadata is None or isinstance(metadata, Mapping):
        return [dict(metadata or {}) for _ in range(count)]
    if len(metadata) != count:
        raise ValueError(f"{len(metadata)} metadata for {count} texts")
    return [dict(m) for m in metadata]


def each_time(created_at: When, count: int, now: datetime) -> list[datetime]:
    """One aware creation time per text: given (naive ones are taken as UTC) or now."""
    if created_at is None or isinstance(created_at, datetime):
        times: list[datetime | None] = [created_at] * count
    else:
        if len(created_at) != count:
            raise ValueError(f"{len(created_at)} creation times for {count} texts")
        times = list(created_at)
    return [now if t is None else t if t.tzinfo else t.replace(tzinfo=UTC) for t in times]


def speaker_of(metadata: Mapping[str, Any]) -> str | None:
    speaker = metadata.get("speaker")
    return speaker.strip() or None if isinstance(speaker, str) else None


def model_id(embeddings: Any) -> str:
    """Which model made a vector: stored with the index, so a change of model is noticed."""
    named = getattr(embeddings, "model_id", None) or getattr(embeddings, "model", None)
    return str(named) if named else type(embeddings).__name__
