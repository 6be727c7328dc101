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
