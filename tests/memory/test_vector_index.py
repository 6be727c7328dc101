"""The compact index a large user's vectors move to (memory/vector_index.py), at a few
thousand memories (the threshold lowered): it finds what exact search finds, never returns
a deleted memory (tombstones, before and after a reload and after the rebuild that drops
them), survives a reload from disk, and turns exact again when deletes shrink it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import faiss
import numpy as np

from memory.faiss_store import FaissMemory
from memory.hashing_embeddings import HashingTestEmbeddings
from memory.vector_index import (
    REBUILD_SHARE,
    compact,
    ids,
    is_compact,
    is_exact,
    new_index,
    without,
)
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
    memory = FaissMemory(tmp_path, embeddings, compact_at=1_000)
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
    again = FaissMemory(tmp_path, embeddings, compact_at=1_000)
    assert is_compact(again._load("ada").index)
    for text in texts[::500]:
        assert (await found(again, text, k=1)) == [text]


async def test_deleted_memories_are_never_found_and_the_rebuild_drops_them(
        tmp_path: Path) -> None:
    embeddings = SeededEmbeddings()
    memory = FaissMemory(tmp_path, embeddings, compact_at=1_000)
    texts = [f"memory {n}" for n in range(SIZE)]
    records = await memory.add("ada", texts)
    query = "a question near what is deleted"
    # The question's 60 nearest go: more than the candidates a search asks for at first.
    near = exact_top(embeddings, texts, query, 60)
    deleted = records[:100] + [r for r in records[100:] if r.text in near]
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
    await check(FaissMemory(tmp_path, embeddings, compact_at=1_000))  # the journal's deletes
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
    reloaded = FaissMemory(tmp_path, embeddings, compact_at=1_000)
    again = reloaded._load("ada")
    assert is_compact(again.index) and again.dead == state.dead
    in_index = set(ids(again.index).tolist())
    assert in_index >= set(again.records) and len(in_index - set(again.records)) == again.dead
    await check(reloaded)
    # A memory added after the rebuild is found by its own text.
    await reloaded.add("ada", ["a brand new memory"])
    assert await found(FaissMemory(tmp_path, embeddings, compact_at=1_000),
                       "a brand new memory", k=1) == ["a brand new memory"]


def test_the_rebuild_drops_tombstones_in_place_and_keeps_the_rest() -> None:
    """Both stages lose the same positions: every kept key keeps its own vector, and a
    search ranks the rest as the index with tombstones ranked them."""
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((600, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    exact_index = new_index(32)
    exact_index.add_with_ids(vectors, np.arange(1_000, 1_600, dtype=np.int64))
    index = compact(exact_index)
    before = {key: index.reconstruct(key) for key in range(1_000, 1_600)}
    query = vectors[:3] + 0.1
    scores, keys = index.search(query, 600)
    live = set(rng.choice(np.arange(1_000, 1_600), 420, replace=False).tolist())
    without(index, live)
    assert is_compact(index) and index.ntotal == 420
    assert faiss.downcast_index(index.index).ntotal == 420
    assert sorted(ids(index).tolist()) == sorted(live)
    for key in live:
        assert np.array_equal(index.reconstruct(key), before[key])
    new_scores, new_keys = index.search(query, 420)
    for row in range(3):
        kept = [(k, s) for k, s in zip(keys[row].tolist(), scores[row].tolist(), strict=True)
                if k in live]
        assert [k for k, _ in kept] == new_keys[row].tolist()
        assert np.allclose([s for _, s in kept], new_scores[row], atol=1e-6)


async def test_k_beyond_what_is_left_finds_exactly_the_live_memories(
        tmp_path: Path) -> None:
    memory = FaissMemory(tmp_path, HashingTestEmbeddings(dim=64), compact_at=16)
    records = await memory.add("ada", [f"note {n} about the {n % 7} lake" for n in range(40)])
    for record in records[:31]:  # rebuilds on the way; 9 left, still compact (>= 16 / 2)
        assert await memory.delete("ada", record.id)
    state = memory._load("ada")
    assert is_compact(state.index)
    left = {r.text for r in records[31:]}
    for store in (memory, FaissMemory(tmp_path, HashingTestEmbeddings(dim=64), compact_at=16)):
        result = await found(store, "note about the lake", k=20)
        assert len(result) == len(left) and set(result) == left


async def test_a_compact_index_turns_exact_below_half_the_threshold_and_back(
        tmp_path: Path) -> None:
    hashing = HashingTestEmbeddings(dim=64)
    memory = FaissMemory(tmp_path, hashing, compact_at=50)
    texts = [f"note {n}: the {w} {n * 7 % 13} sings" for n, w in
             zip(range(60), ["owl", "lark", "wren", "crow"] * 15, strict=True)]
    records = await memory.add("ada", texts)
    assert is_compact(memory._load("ada").index)
    for record in records[:35]:  # 25 left: half the threshold, still compact
        assert await memory.delete("ada", record.id)
    assert is_compact(memory._load("ada").index)
    assert await memory.delete("ada", records[35].id)
    state = memory._load("ada")
    assert is_exact(state.index) and state.dead == 0 and state.index.ntotal == 24
    reloaded = FaissMemory(tmp_path, hashing, compact_at=50)
    assert is_exact(reloaded._load("ada").index)  # the fold wrote it so
    for text in texts[36::5]:
        assert await found(reloaded, text, k=1) == [text]
    # Back up: exact until the threshold itself (not half of it) is reached again.
    await reloaded.add("ada", [f"new note {n}" for n in range(25)])
    assert is_exact(reloaded._load("ada").index)
    await reloaded.add("ada", ["the fiftieth note"])
    assert is_compact(reloaded._load("ada").index)


async def test_deleting_a_memory_the_snapshot_has_no_vector_of_leaves_no_tombstone(
        tmp_path: Path) -> None:
    """Another model's vectors wait in `other`, which a fold does not write: after a
    reload such a memory has no vector anywhere, and deleting it counts no tombstone."""
    old = HashingTestEmbeddings(dim=64)
    await FaissMemory(tmp_path, old, compact_at=16).add("ada", [f"fact {n}" for n in range(20)])
    other_model = FaissMemory(tmp_path, HashingTestEmbeddings(dim=48, salt="v2"),
                              compact_at=16)
    [orphan] = other_model._add("ada", ["a fact of another model"], None)
    with other_model._writing("ada") as state:
        assert state.other
        other_model._fold("ada", state)
    memory = FaissMemory(tmp_path, old, compact_at=16)
    state = memory._load("ada")
    assert is_compact(state.index) and state.dead == 0
    assert await memory.delete("ada", orphan.id)
    assert await memory.delete("ada", state.records[min(state.records)].id)

    def check(state) -> None:  # type: ignore[no-untyped-def]
        in_index = set(ids(state.index).tolist())
        assert state.dead == 1 == len(in_index - set(state.records))

    check(memory._load("ada"))
    check(FaissMemory(tmp_path, old, compact_at=16)._load("ada"))
