"""The compact index a large user's vectors move to (memory/vector_index.py), at a few
thousand memories (the threshold lowered): it finds what exact search finds, never returns
a deleted memory (tombstones, before and after a reload and after the rebuild that drops
them), and survives a reload from disk."""

from __future__ import annotations

import hashlib
from pathlib import Path

import faiss
import numpy as np

from memory.faiss_store import FaissMemory
from memory.vector_index import REBUILD_SHARE, is_compact
from memory.vectors import unit_vectors

SIZE = 3_000


class SeededEmbeddings:
    """A random unit vector per text, the same every time: no structure for an index to
    lean on, the hardest case for finding the exact nearest."""

    model_id = "seeded-96"

    def embed_array(self, texts: list[str]) -> np.ndarray:
        return np.asarray([np.random.default_rng(int.from_bytes(hashlib.blake2b(
            t.encode(), digest_size=8).digest(), "little")).standard_normal(96)
            for t in texts], dtype=np.float32)


def exact_top(embeddings: SeededEmbeddings, texts: list[str], query: str, k: int) -> set[str]:
    vectors = unit_vectors(embeddings, texts)
    q = unit_vectors(embeddings, [query])[0]
    return {texts[n] for n in np.argsort(-(vectors @ q))[:k]}


async def found(memory: FaissMemory, query: str, k: int = 4) -> list[str]:
    return [m.record.text for m in await memory.search("ada", query, k=k, mode="dense")]


async def test_the_compact_index_finds_what_exact_search_finds(tmp_path: Path) -> None:
    embeddings = SeededEmbeddings()
    memory = FaissMemory(tmp_path, embeddings, quantize_at=1_000)
    texts = [f"memory {n}" for n in range(SIZE)]
    for start in range(0, SIZE, 500):
        await memory.add("ada", texts[start:start + 500])
    assert is_compact(memory._load("ada").index)
    queries = [f"question {n}" for n in range(40)]
    hits = 0
    for q in queries:
        hits += len(exact_top(embeddings, texts, q, 4) & set(await found(memory, q)))
    assert hits / (4 * len(queries)) >= 0.9
    # A memory's own text finds it first, again after a reload from disk.
    again = FaissMemory(tmp_path, embeddings, quantize_at=1_000)
    assert is_compact(again._load("ada").index)
    for text in texts[::500]:
        assert (await found(again, text, k=1)) == [text]


async def test_deleted_memories_are_never_found_and_the_rebuild_drops_them(
        tmp_path: Path) -> None:
    embeddings = SeededEmbeddings()
    memory = FaissMemory(tmp_path, embeddings, quantize_at=1_000)
    texts = [f"memory {n}" for n in range(SIZE)]
    records = await memory.add("ada", texts)
    query = "a question near what is deleted"
    # The question's 60 nearest go: more than the candidates a search asks for at first.
    near = exact_top(embeddings, texts, query, 60)
    deleted = [r for r in records if r.text in near or r in records[:100]]
    for record in deleted:
        assert await memory.delete("ada", record.id)
    gone = {r.text for r in deleted}
    state = memory._load("ada")
    assert state.dead == len(deleted) and state.index.ntotal == SIZE  # tombstones, kept
    live = [t for t in texts if t not in gone]

    async def check(store: FaissMemory) -> None:
        assert not store._needs_vectors(store._load("ada"))  # no re-embedding set off
        for text in [*sorted(gone)[:20], query]:
            result = await found(store, text)
            assert len(result) == 4 and not gone & set(result)
        # (approximate: the exact top 4 of what is left, or all but one of them)
        assert len(set(await found(store, query)) & exact_top(embeddings, live, query, 4)) >= 3

    await check(memory)
    await check(FaissMemory(tmp_path, embeddings, quantize_at=1_000))  # the journal's deletes
    # Past a share of tombstones, the fold rebuilds the index without them.
    more = records[100:100 + int(REBUILD_SHARE * SIZE)]
    for record in more:
        if record.text not in gone:
            assert await memory.delete("ada", record.id)
            gone.add(record.text)
    live = [t for t in texts if t not in gone]
    state = memory._load("ada")
    assert state.index.ntotal < SIZE and state.dead < REBUILD_SHARE * state.index.ntotal
    assert state.index.ntotal == len(live) + state.dead
    await check(memory)
    reloaded = FaissMemory(tmp_path, embeddings, quantize_at=1_000)
    again = reloaded._load("ada")
    assert is_compact(again.index) and again.dead == state.dead
    assert faiss.downcast_index(again.index.index).ntotal == again.index.ntotal
    await check(reloaded)
    # A memory added after the rebuild is found by its own text.
    await reloaded.add("ada", ["a brand new memory"])
    assert await found(FaissMemory(tmp_path, embeddings, quantize_at=1_000),
                       "a brand new memory", k=1) == ["a brand new memory"]
