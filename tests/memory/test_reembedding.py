"""A change of embedding model: the FAISS index records which model made its vectors; a
store opened with another model answers from the lexical index while it re-embeds every
memory in the background, loses none, and records the new model."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from memory.faiss_files import SNAPSHOT, folder_name
from memory.faiss_store import FaissMemory
from memory.hashing_embeddings import HashingTestEmbeddings

OLD = HashingTestEmbeddings(dim=64)
NEW = HashingTestEmbeddings(dim=48, salt="v2")  # another model, another size
FACTS = [f"fact {i}: my {word} is called {name}" for i, (word, name) in enumerate(
    [("dog", "rex"), ("cat", "tom"), ("boat", "aurora"), ("bike", "swift"),
     ("plant", "fern"), ("car", "dot")] * 50)]


class Gated(HashingTestEmbeddings):
    """The new model, held at a gate so the test can search mid-migration."""

    def __init__(self) -> None:
        super().__init__(dim=48, salt="v2")
        self.gate = threading.Event()
        self.calls = 0

    def embed_array(self, texts: list[str]) -> Any:
        self.calls += 1
        self.gate.wait(10)
        return super().embed_array(texts)


async def test_a_new_model_reembeds_in_the_background_and_loses_nothing(
        tmp_path: Path) -> None:
    old = FaissMemory(tmp_path, OLD)
    await old.add("ada", FACTS, {"kind": "fact"})
    await old.add("ada", ["my sister lives in lyon"], keys=["sister lyon ines"])
    snapshot = tmp_path / folder_name("ada") / SNAPSHOT
    assert not snapshot.exists() or json.loads(snapshot.read_text())["model"] == OLD.model_id

    gated = Gated()
    new = FaissMemory(tmp_path, gated)
    # Mid-migration: the search does not wait for the model, and words still find.
    found = await new.search("ada", "what is my boat called", k=3)
    assert found and all("boat" in m.record.text for m in found)
    assert all(m.similarity is None for m in found)  # no vectors of this model yet
    gated.gate.set()
    new.wait_for_reembedding(timeout=30)

    listed = await new.list("ada", limit=1000)
    assert len(listed) == len(set(FACTS)) + 1
    state = new._load("ada")
    assert state.model == gated.model_id and state.index.d == 48
    assert state.index.ntotal == len(listed) and not state.other
    assert json.loads(snapshot.read_text())["model"] == gated.model_id
    # Dense search works with the new model, and a key survives the change (it is what
    # was re-embedded, not the text).
    dense = await new.search("ada", "sister lyon ines", k=1, mode="dense")
    assert dense[0].record.text == "my sister lives in lyon"
    assert dense[0].score > 0.99
    # Another process opening the folder with the new model finds nothing to redo.
    again = FaissMemory(tmp_path, NEW)
    assert not again._needs_vectors(again._load("ada"))
    assert (await again.search("ada", "cat tom", k=1))[0].record.text.endswith("tom")


async def test_memories_added_during_the_migration_are_kept(tmp_path: Path) -> None:
    await FaissMemory(tmp_path, OLD).add("ada", FACTS[:20])
    gated = Gated()
    new = FaissMemory(tmp_path, gated)
    await new.search("ada", "dog", k=1)  # starts the migration, which waits at the gate
    adding = threading.Thread(target=new._add, args=("ada", ["i moved to porto"], None))
    adding.start()
    gated.gate.set()
    adding.join(10)
    new.wait_for_reembedding(timeout=30)
    if new._needs_vectors(new._load("ada")):  # the add came after the last pass began
        new.reembed("ada")
    state = new._load("ada")
    assert len(state.records) == 21 and state.index.ntotal == 21
    vector = new._vectors(["i moved to porto"])
    _scores, keys = state.index.search(np.asarray(vector, np.float32), 1)
    assert state.records[int(keys[0][0])].text == "i moved to porto"


async def test_redis_reembeds_a_changed_model_of_the_same_size(redis_url: str) -> None:
    from redis.asyncio import Redis

    from memory.redis_lexical import as_text as _text
    from memory.redis_store import RedisVectorMemory, user_key

    client = Redis.from_url(redis_url)
    try:
        old = RedisVectorMemory(client, OLD, algorithm="FLAT")
        await old.add("ada", FACTS[:40], {"kind": "fact"})
        await old.add("ada", ["my sister lives in lyon"], keys=["sister lyon ines"])
        new = RedisVectorMemory(client, HashingTestEmbeddings(dim=64, salt="v2"),
                                algorithm="FLAT")
        # Words answer while the vectors are redone in the background.
        found = await new.search("ada", "what is my boat called", k=2)
        assert found and all("boat" in m.record.text for m in found)
        assert all(m.similarity is None for m in found)
        await new.wait_for_reembedding()
        counts = await client.hgetall(f"parley:mem-models:{user_key('ada')}")
        assert {_text(k): int(v) for k, v in counts.items()} == {new.model: 41}
        assert len(await new.list("ada", limit=100)) == 41
        dense = await new.search("ada", "sister lyon ines", k=1, mode="dense")
        assert dense[0].record.text == "my sister lives in lyon" and dense[0].score > 0.99
    finally:
        await client.aclose()


async def test_reembedding_a_compact_index_with_tombstones(tmp_path: Path) -> None:
    """Tombstones are no missing vectors: they set off no re-embedding, and a new model's
    index holds the live memories alone."""
    from memory.vector_index import is_compact

    old = FaissMemory(tmp_path, OLD, compact_at=16)
    records = await old.add("ada", FACTS[:60])
    for record in records[:10]:
        assert await old.delete("ada", record.id)
    state = old._load("ada")
    assert is_compact(state.index) and state.dead == 10 and state.index.ntotal == 60
    assert not old._needs_vectors(state)
    new = FaissMemory(tmp_path, NEW, compact_at=16)
    assert new._needs_vectors(new._load("ada"))
    assert new.reembed("ada") == 50
    gone = {r.text for r in records[:10]}
    for store in (new, FaissMemory(tmp_path, NEW, compact_at=16)):
        state = store._load("ada")
        assert is_compact(state.index) and state.model == NEW.model_id
        assert state.dead == 0 and state.index.ntotal == len(state.records) == 50
        assert not store._needs_vectors(state)
        for text in sorted(gone)[:4]:
            found = await store.search("ada", text, k=5, mode="dense")
            assert len(found) == 5 and not gone & {m.record.text for m in found}
        kept = records[30].text
        assert (await store.search("ada", kept, k=1, mode="dense"))[0].record.text == kept
