"""FAISS memory per user: isolation, persistence, search, delete."""

from __future__ import annotations

import os
from pathlib import Path

from memory.embeddings import LocalEmbeddings
from memory.faiss_store import FaissMemory


async def test_users_never_see_each_other(tmp_path: Path, embeddings: LocalEmbeddings) -> None:
    store = FaissMemory(tmp_path, embeddings)
    await store.add("ada", ["My sister Alice lives in Lyon."])
    await store.add("bob", ["My brother Tom lives in Oslo."])
    ada = await store.search("ada", "where does my sibling live?", k=5)
    bob = await store.search("bob", "where does my sibling live?", k=5)
    assert [m.record.text for m in ada] == ["My sister Alice lives in Lyon."]
    assert [m.record.text for m in bob] == ["My brother Tom lives in Oslo."]
    assert [r.text for r in await store.list("bob")] == ["My brother Tom lives in Oslo."]
    ada_id = ada[0].record.id
    assert not await store.delete("bob", ada_id)  # Bob cannot delete Ada's memory
    assert [r.id for r in await store.list("ada")] == [ada_id]
    assert await store.search("carol", "anything") == []


async def test_top_k_threshold_and_ranking(tmp_path: Path, embeddings: LocalEmbeddings) -> None:
    store = FaissMemory(tmp_path, embeddings)
    await store.add("ada", ["I am allergic to peanuts.", "My favourite colour is green.",
                            "We have a dog called Rex.", "I work as a nurse."])
    found = await store.search("ada", "what food should I avoid?", k=2)
    assert len(found) == 2 and found[0].record.text == "I am allergic to peanuts."
    assert found[0].score > found[1].score
    strict = await store.search("ada", "what food should I avoid?", k=4, min_score=0.3)
    assert [m.record.text for m in strict] == ["I am allergic to peanuts."]


async def test_memories_survive_a_new_instance(tmp_path: Path,
                                               embeddings: LocalEmbeddings) -> None:
    first = FaissMemory(tmp_path, embeddings)
    added = await first.add("ada", ["I drive a red Toyota.", "I drive a red Toyota.",
                                    "My favourite colour is green."], {"kind": "fact"})
    assert added[0].id == added[1].id  # the same fact is kept once
    again = FaissMemory(tmp_path, embeddings)
    found = await again.search("ada", "what car do I have?", k=1)
    assert found[0].record.text == "I drive a red Toyota."
    assert found[0].record.metadata == {"kind": "fact"}
    assert len(await again.list("ada")) == 2
    assert not [p for p in os.listdir(tmp_path) if "ada" in p]  # folders: a hash, not the id


async def test_delete_and_clear(tmp_path: Path, embeddings: LocalEmbeddings) -> None:
    store = FaissMemory(tmp_path, embeddings)
    records = await store.add("ada", ["I like tea.", "I live in Porto."])
    assert await store.delete("ada", records[0].id)
    assert not await store.delete("ada", records[0].id)
    assert [m.record.text for m in await store.search("ada", "drink", k=5)] == [
        "I live in Porto."]
    assert await store.clear("ada") == 1
    assert await store.list("ada") == []
    assert await FaissMemory(tmp_path, embeddings).list("ada") == []


async def test_a_repeated_fact_is_neither_embedded_nor_stored_again(tmp_path: Path) -> None:
    embeddings = LocalEmbeddings(cache_size=0)
    embedded: list[str] = []
    real = embeddings.embed_array

    def counting(texts: list[str]):  # type: ignore[no-untyped-def]
        embedded.extend(texts)
        return real(texts)

    embeddings.embed_array = counting  # type: ignore[method-assign]
    memory = FaissMemory(tmp_path, embeddings)
    first = await memory.add("ada", ["I keep bees", "I keep bees"])
    again = await memory.add("ada", ["I keep bees", "I sail"])
    assert embedded == ["I keep bees", "I sail"]
    assert first[0].id == first[1].id == again[0].id
    assert len(await memory.list("ada")) == 2
    # After a delete the text is new again.
    await memory.delete("ada", first[0].id)
    await memory.add("ada", ["I keep bees"])
    assert embedded[-1] == "I keep bees"
    assert len(FaissMemory(tmp_path, embeddings)._load("ada").records) == 2


async def test_adds_append_to_a_journal_that_folds_into_snapshots(
        tmp_path: Path, embeddings: LocalEmbeddings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import memory.faiss_files as files
    import memory.faiss_store as store

    monkeypatch.setattr(store, "COMPACT_AT_LEAST", 4)
    memory = FaissMemory(tmp_path, embeddings)
    records = [(await memory.add("ada", [f"I have {n} cats"]))[0] for n in range(3)]
    folder = memory._dir("ada")
    # Three adds: three journal lines, no snapshot rewritten.
    assert len((folder / files.JOURNAL).read_text().splitlines()) == 3
    assert not (folder / store.SNAPSHOT).exists()
    await memory.delete("ada", records[0].id)  # the fourth entry: a snapshot, a new journal
    # The snapshot starts generation 1, whose files replace generation 0's.
    assert sorted(p.name for p in folder.iterdir()) == [
        ".lock", "index.1.faiss", "journal.1.jsonl", store.SNAPSHOT]
    assert (folder / "journal.1.jsonl").read_text() == ""
    await memory.add("ada", ["I sail on Sundays"])
    # A crash mid-write leaves a torn line: it is skipped, and the next write ends it.
    with (folder / "journal.1.jsonl").open("a") as journal:
        journal.write('{"op": "add", "key": 99, "te')
    reloaded = FaissMemory(tmp_path, embeddings)
    texts = sorted(r.text for r in await reloaded.list("ada"))
    assert texts == ["I have 1 cats", "I have 2 cats", "I sail on Sundays"]
    found = await reloaded.search("ada", "boat trips", k=1)
    assert found[0].record.text == "I sail on Sundays"
    assert (await reloaded.add("ada", ["I knit"]))[0].id not in {r.id for r in records}
    assert len(await FaissMemory(tmp_path, embeddings).list("ada")) == 4



async def test_a_large_memory_is_compacted_and_still_works(tmp_path: Path) -> None:
    import faiss

    from memory.embeddings import make_embeddings
    from memory.vector_index import is_exact

    hashing = make_embeddings("hashing")
    memory = FaissMemory(tmp_path, hashing, compact_at=50)
    texts = [f"note {n}: the {w} {n * 7 % 13} sings" for n, w in
             zip(range(60), ["owl", "lark", "wren", "crow"] * 15, strict=True)]
    added = await memory.add("ada", texts[:49])
    assert is_exact(memory._load("ada").index)
    await memory.add("ada", texts[49:])
    index = memory._load("ada").index
    assert not is_exact(index)
    assert isinstance(faiss.downcast_index(index.index), faiss.IndexRefine)
    found = await memory.search("ada", texts[55], k=1)
    assert found[0].record.text == texts[55] and found[0].score > 0.95
    assert await memory.delete("ada", added[3].id)
    await memory.add("ada", ["a brand new note about herons"])
    # A new instance loads the compact snapshot and replays the journal into it.
    again = FaissMemory(tmp_path, hashing, compact_at=50)
    assert not is_exact(again._load("ada").index)
    assert len(await again.list("ada", limit=100)) == 60
    assert (await again.search("ada", "a brand new note about herons", k=1)
            )[0].record.text == "a brand new note about herons"
    assert texts[3] not in {m.record.text for m in await again.search("ada", texts[3], k=5)}


async def test_a_folder_from_before_generations_loads_and_moves_on(
        tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """index.faiss + memories.json without a generation + journal.jsonl: the old layout."""
    import base64
    import json
    from datetime import UTC, datetime

    import faiss
    import numpy as np

    import memory.faiss_files as faiss_files
    import memory.faiss_store as store
    from memory.embeddings import make_embeddings
    from memory.semantic import MemoryRecord
    from memory.vectors import unit_vectors

    hashing = make_embeddings("hashing")
    monkeypatch.setattr(store, "COMPACT_AT_LEAST", 4)
    texts = ["I keep bees", "I sail", "I knit"]
    vectors = unit_vectors(hashing, texts)
    rows = [faiss_files.record_row(key, MemoryRecord(id=f"m{key}", text=text,
                                                created_at=datetime.now(UTC)))
            for key, text in enumerate(texts, start=1)]
    memory = FaissMemory(tmp_path, hashing)
    folder = memory._dir("ada")
    folder.mkdir(parents=True)
    index = faiss_files.new_index(vectors.shape[1])
    index.add_with_ids(vectors[:2], np.array([1, 2], dtype=np.int64))
    faiss.write_index(index, str(folder / "index.faiss"))
    (folder / "memories.json").write_text(json.dumps({"next_id": 3, "records": rows[:2]}))
    (folder / "journal.jsonl").write_text(json.dumps(
        {"op": "add", **rows[2], "vector": base64.b64encode(vectors[2].tobytes()).decode()})
        + "\n")
    assert sorted(r.text for r in await memory.list("ada")) == sorted(texts)
    assert (await memory.search("ada", "I sail", k=1))[0].record.id == "m2"
    other = FaissMemory(tmp_path, hashing)
    await other.list("ada")  # on the old layout too
    await memory.add("ada", ["I run", "I swim", "I row"])  # 4 journal entries: a fold
    assert sorted(p.name for p in folder.iterdir()) == [
        ".lock", "index.1.faiss", "journal.1.jsonl", "memories.json"]
    assert len(await other.list("ada")) == len(await FaissMemory(tmp_path, hashing).list(
        "ada")) == 6


async def test_one_users_index_rebuild_keeps_no_other_user_waiting(
        tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The delete that crosses the tombstone share rebuilds that user's compact index under
    their lock; another user's search, add and list go on meanwhile."""
    import threading

    import memory.faiss_store as store
    from memory.embeddings import make_embeddings
    from memory.vector_index import REBUILD_SHARE, is_compact

    hashing = make_embeddings("hashing")
    memory = FaissMemory(tmp_path, hashing, compact_at=16)
    await memory.add("ada", ["I keep bees on the roof"])
    bob = await memory.add("bob", [f"bob's note number {n}" for n in range(40)])
    assert is_compact(memory._load("bob").index)
    share = int(REBUILD_SHARE * 40)
    for record in bob[:share]:  # tombstones, up to the share: no rebuild yet
        assert await memory.delete("bob", record.id)
    rebuilding, release = threading.Event(), threading.Event()
    real = store.without

    def held(index, live):  # type: ignore[no-untyped-def]
        rebuilding.set()
        release.wait(30)
        return real(index, live)

    monkeypatch.setattr(store, "without", held)
    deleting = threading.Thread(target=memory._delete, args=("bob", bob[share].id))
    deleting.start()
    try:
        assert rebuilding.wait(10)
        found: list[str] = []

        def ada_works() -> None:
            found.extend(m.record.text for m in memory._search(
                "ada", "bees", 1, 0.0, "hybrid", None))
            memory._add("ada", ["I sail on Sundays"], None)

        ada = threading.Thread(target=ada_works)
        ada.start()
        ada.join(5)
        assert not ada.is_alive(), "Ada waited for Bob's rebuild"
        assert found == ["I keep bees on the roof"]
    finally:
        release.set()
        deleting.join(30)
    state = memory._load("bob")
    assert state.dead == 0 and state.index.ntotal == 40 - share - 1
    assert len(await memory.list("ada")) == 2
