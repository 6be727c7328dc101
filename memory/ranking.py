"""The end of every search, shared by both engines so the same candidates rank the same:
the question's hints (who, when) read in a hybrid search, the dense and lexical candidates
fused (memory/fusion.py), and the first k that pass `min_score` as ScoredMemory. An engine
only finds the candidates."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from memory.fusion import About, Fusion, SearchMode, fuse, top
from memory.query_hints import QueryHints, read_hints
from memory.semantic import MemoryRecord, ScoredMemory


def ranked(query: str, dense: Sequence[tuple[Hashable, float]],
           lexical: Sequence[tuple[Hashable, float]], *,
           records: Mapping[Any, MemoryRecord], about: Mapping[Any, About],
           speakers: Iterable[str], now: datetime | None, mode: SearchMode, fusion: Fusion,
           k: int, min_score: float) -> list[ScoredMemory]:
    """The best k candidates. `dense` pairs are (key, cosine), `lexical` (key, BM25);
    `records` and `about` hold at least every candidate; `speakers` are the user's named
    speakers, which a question may name."""
    hints = read_hints(query, speakers, now) if mode == "hybrid" else QueryHints()
    found = fuse(dense, lexical, about, hints, mode=mode, fusion=fusion)
    return [ScoredMemory(record=records[f.key], score=f.score, similarity=f.similarity)
            for f in top(found, k, min_score)]
