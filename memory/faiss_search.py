"""How a user's FAISS copy answers a question: the dense candidates from its vector index
and the lexical ones from its BM25 index, fused (memory/fusion.py) with what the question
says of who and when. The caller holds the store's lock and has embedded the question."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from memory.faiss_files import UserIndex
from memory.fusion import Fusion, SearchMode
from memory.ranking import ranked
from memory.semantic import ScoredMemory
from memory.vector_index import nearest


def answer(state: UserIndex, query: str, vector: np.ndarray | None, k: int,
           min_score: float, mode: SearchMode, now: datetime | None, fusion: Fusion
           ) -> tuple[list[ScoredMemory], bool]:
    """The best k memories, and whether the index turned out to be another model's (its
    vectors do not fit the question's: then it needs re-embedding, and words answer)."""
    pool = fusion.pool(k)
    dense: list[tuple[int, float]] = []
    index = state.index
    misfit = False
    if vector is not None and index is not None and index.ntotal:
        if index.d != vector.shape[1]:  # an index older than model records
            state.model = None
            misfit = True
        else:
            dense = nearest(index, vector, pool, state.records, state.dead)
    lexical = state.lexical.search(query, pool) if mode != "dense" else []
    about = {key: state.about[key] for key, _ in (*dense, *lexical)}
    scored = ranked(query, dense, lexical, records=state.records, about=about,
                    speakers=state.speakers, now=now, mode=mode, fusion=fusion, k=k,
                    min_score=min_score)
    return scored, misfit
