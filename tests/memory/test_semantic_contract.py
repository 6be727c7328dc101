"""One contract, two engines: FAISS files (embedded) and Redis vector search (replicas).

Mechanics run on the word-hashing test embedder (fast, predictable); one test per engine
checks retrieval quality with the real shipped model.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from memory.embeddings import LocalEmbeddings, make_embeddings
from memory.faiss_store import FaissMemory
from memory.redis_store import RedisVectorMemory
from memory.semantic import SemanticMemory

Opener = Callable[..., SemanticMemory]  # a fresh store instance over the same storage
HASHING = make_embeddings("hashing")


@pytest.fixture(params=["faiss", "redis"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path
                     ) -> AsyncIterator[Opener]:
    if request.param == "faiss":
        yield lambda embeddings=HASHING: FaissMemory(tmp_path / "memory", embeddings)
        return
    url = request.getfixturevalue("redis_url")
    clients: list[Redis] = []

    def open_redis(embeddings: Any = HASHING) -> SemanticMemory:
        clients.append(Redis.from_url(url))
        return RedisVectorMemory(clients[-1], embeddings, algorithm="FLAT")

    yield open_redis
    for client in clients:
        await client.aclose()


async def test_users_never_cross(open_store: Opener) -> None:
    store = open_store()
    [ada] = await store.add("ada", ["my sister alice lives in lyon"])
    [bob] = await store.add("bob", ["my brother tom lives in oslo"])
    assert [m.record.id for m in await store.search("ada", "who lives where", k=10)] == [ada.id]
    assert [m.record.id for m in await store.search("bob", "who lives where", k=10)] == [bob.id]
    assert [r.id for r in await store.list("bob")] == [bob.id]
    assert not await store.delete("bob", ada.id)  # Bob cannot delete Ada's memory
    assert await store.clear("bob") == 1
    assert [r.id for r in await store.list("ada")] == [ada.id]
    assert await store.search("carol", "anything") == []
    assert await store.list("carol") == []


async def test_memories_survive_a_new_instance(open_store: Opener) -> None:
    meta = {"kind": "fact", "source": "chat", "thread_id": "t-1"}
    added = await open_store().add("ada", ["i drive a red toyota", "i like green tea"], meta)
    again = open_store()
    listed = await again.list("ada")
    assert {r.id for r in listed} == {r.id for r in added}
    found = await again.search("ada", "red toyota", k=1)
    assert found[0].record.text == "i drive a red toyota"
    assert found[0].record.metadata == meta
    assert found[0].record.created_at.tzinfo is not None
    assert abs((found[0].record.created_at - added[0].created_at).total_seconds()) < 1e-3


async def test_identical_facts_are_kept_once(open_store: Opener) -> None:
    store = open_store()
    first = await store.add("ada", ["i like green tea", " i like green tea "], {"kind": "fact"})
    assert first[0].id == first[1].id
    again = await store.add("ada", ["i like green tea"], {"kind": "exchange"})
    assert again[0].id == first[0].id and again[0].metadata == {"kind": "fact"}
    assert len(await store.list("ada")) == 1
    assert await store.add("ada", ["", "   "]) == []


async def test_top_k_order_and_min_score(open_store: Opener) -> None:
    store = open_store()
    await store.add("ada", ["green tea every morning", "green tea", "black coffee at noon",
                            "a walk in the park", "reading old books"])
    found = await store.search("ada", "green tea", k=2)
    assert [m.record.text for m in found] == ["green tea", "green tea every morning"]
    assert found[0].score == pytest.approx(1.0, abs=1e-4) and found[0].score > found[1].score
    everything = await store.search("ada", "green tea", k=10)
    assert len(everything) == 5
    assert [m.score for m in everything] == sorted((m.score for m in everything), reverse=True)
    strict = await store.search("ada", "green tea", k=10, min_score=0.5)
    assert [m.record.text for m in strict] == ["green tea", "green tea every morning"]
    assert await store.search("ada", "green tea", k=10, min_score=1.01) == []
    with pytest.raises(ValueError, match="k must be at least 1"):
        await store.search("ada", "green tea", k=0)


async def test_delete_one_and_clear_all(open_store: Opener) -> None:
    store = open_store()
    tea, porto, bike = await store.add("ada", ["i like tea", "i live in porto", "i ride a bike"])
    assert await store.delete("ada", tea.id)
    assert not await store.delete("ada", tea.id)
    assert not await store.delete("ada", "../../etc/passwd")
    assert {m.record.id for m in await store.search("ada", "i like tea", k=5)} == {
        porto.id, bike.id}
    assert {r.id for r in await open_store().list("ada")} == {porto.id, bike.id}
    assert await store.clear("ada") == 2
    assert await store.list("ada") == [] and await store.search("ada", "porto") == []
    assert await open_store().list("ada") == []
    assert await store.clear("ada") == 0


async def test_list_is_newest_first_and_pages(open_store: Opener) -> None:
    store = open_store()
    texts = [f"note number {word}" for word in ("one", "two", "three", "four", "five")]
    for text in texts:  # separate calls: distinct creation times
        await store.add("ada", [text])
    pages = [await store.list("ada", limit=2, offset=o) for o in (0, 2, 4)]
    assert [[r.text for r in page] for page in pages] == [
        [texts[4], texts[3]], [texts[2], texts[1]], [texts[0]]]
    assert await store.list("ada", limit=2, offset=10) == []


async def test_concurrent_adds_lose_nothing(open_store: Opener) -> None:
    store = open_store()
    await asyncio.gather(*(store.add("ada", [f"fact number {i}"]) for i in range(12)))
    assert len(await store.list("ada")) == 12
    assert len(await open_store().list("ada")) == 12


async def test_the_real_model_recalls_the_relevant_fact(
        open_store: Opener, embeddings: LocalEmbeddings) -> None:
    store = open_store(embeddings)
    await store.add("ada", ["My sister Alice lives in Lyon.", "I am allergic to peanuts.",
                            "My favourite colour is green.", "We have a dog called Rex."])
    await store.add("bob", ["My sister Eve lives in Oslo."])
    found = await store.search("ada", "where does my sister live?", k=4)
    assert found[0].record.text == "My sister Alice lives in Lyon."
    assert found[0].score > 0.5 and found[0].score > found[1].score + 0.2
    assert all("Oslo" not in m.record.text for m in found)
    assert found[0].record.created_at.tzinfo == UTC


async def test_a_memory_is_found_by_its_key(open_store: Opener) -> None:
    store = open_store()
    exchange = "Q: what should I cook tonight?\nA: a mushroom risotto"
    first = await store.add("ada", [exchange], {"kind": "exchange"},
                            keys=["what should I cook tonight?"])
    await store.add("ada", ["I repair old bicycles"])
    found = await store.search("ada", "what should I cook tonight?", k=1)
    assert found[0].record.text == exchange and found[0].score > 0.99
    # The stored text, not the key, decides what is a repeat.
    again = await store.add("ada", [exchange], keys=["something else entirely"])
    assert again[0].id == first[0].id
    assert len(await store.list("ada")) == 2


async def test_both_engines_rank_the_same_memories_alike(
        tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same memories and questions give the same ranking and scores in either engine,
    also when some of the question's words are common (in more than a tenth of the memories
    and more than COMMON of them, lowered here): such a word chooses no candidates in
    either, and adds to the scores in the same order."""
    from datetime import datetime, timedelta

    import memory.lexical as lexical

    monkeypatch.setattr(lexical, "COMMON", 3)
    texts = ["green tea every morning", "black tea in the morning",
             "tea with lemon in the morning", "lemon cake on sunday", "morning run by the river",
             "tea and toast", "morning tea with friends", "a morning walk",
             "iced tea with lemon", "morning news on the radio", "tea at noon",
             "hot tea in winter", "the river in the morning", "coffee and a morning paper",
             "tea in the morning, tea at night", "a quiet sunday"]
    start = datetime(2024, 5, 1, tzinfo=UTC)
    times = [start + timedelta(hours=n) for n in range(len(texts))]
    client = Redis.from_url(redis_url)
    try:
        engines: list[SemanticMemory] = [FaissMemory(tmp_path / "memory", HASHING),
                                          RedisVectorMemory(client, HASHING, algorithm="FLAT")]
        for engine in engines:
            await engine.add("ada", texts, created_at=times)
        questions = ["tea with lemon in the morning", "morning tea", "tea",
                     "the river in the morning", "sunday morning tea", "lemon"]
        for mode in ("lexical", "hybrid"):
            for question in questions:
                for k in (3, 10):
                    faiss_found, redis_found = [
                        [(m.record.text, round(m.score, 5)) for m in
                         await engine.search("ada", question, k=k, mode=mode)]  # type: ignore[arg-type]
                        for engine in engines]
                    assert faiss_found == redis_found, (mode, question, k)
        # A common word adds to what a rarer one found and finds nothing by itself:
        found = await engines[1].search("ada", "tea with lemon", k=10, mode="lexical")
        assert {m.record.text for m in found} == {t for t in texts if "lemon" in t}
    finally:
        await client.aclose()
