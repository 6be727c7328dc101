"""Hybrid recall on a small dialogue written for these tests, in both engines with the real
model: words the meaning misses, a question about a person, a question about a time, and
the same ranking from FAISS files and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from memory.embeddings import LocalEmbeddings
from memory.faiss_store import FaissMemory
from memory.redis_store import RedisVectorMemory
from memory.semantic import SemanticMemory

Opener = Callable[[Any], SemanticMemory]


def at(month: int, day: int) -> datetime:
    return datetime(2024, month, day, 18, 0, tzinfo=UTC)


# (speaker, text, when): two friends over three evenings.
DIALOGUE = [
    ("Ada", "Ada: I finally tried that Gujarati recipe, dhokla, it came out fluffy!", at(3, 2)),
    ("Ben", "Ben: Nice! I spent the weekend fixing the gearbox on my old Vespa.", at(3, 2)),
    ("Ada", "Ada: My sister Ines starts her residency in Lyon next month.", at(3, 2)),
    ("Ben", "Ben: I cooked a big pot of chili for the neighbours.", at(5, 14)),
    ("Ada", "Ada: I cooked risotto with the mushrooms we picked.", at(5, 14)),
    ("Ben", "Ben: My daughter won the regional chess tournament.", at(5, 14)),
    ("Ada", "Ada: We adopted a greyhound called Biscuit from the shelter.", at(9, 20)),
    ("Ben", "Ben: I am training for the Porto half marathon.", at(9, 20)),
    ("Ada", "Ada: Work is hectic, we are moving the whole office to Ghent.", at(9, 20)),
    ("Ben", "Ben: I cooked pancakes for the kids this morning.", at(9, 20)),
]


@pytest.fixture(params=["faiss", "redis"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path
                     ) -> AsyncIterator[Opener]:
    if request.param == "faiss":
        yield lambda embeddings: FaissMemory(tmp_path / "memory", embeddings)
        return
    client = Redis.from_url(request.getfixturevalue("redis_url"))
    yield lambda embeddings: RedisVectorMemory(client, embeddings, algorithm="FLAT")
    await client.aclose()


async def remember_dialogue(store: SemanticMemory) -> None:
    await store.add("ada", [t for _s, t, _w in DIALOGUE],
                    [{"speaker": s} for s, _t, _w in DIALOGUE],
                    created_at=[w for _s, _t, w in DIALOGUE])


async def texts(store: SemanticMemory, query: str, k: int = 3, **options: Any) -> list[str]:
    return [m.record.text for m in await store.search("ada", query, k=k, **options)]


async def test_a_rare_word_finds_its_memory(open_store: Opener,
                                            embeddings: LocalEmbeddings) -> None:
    store = open_store(embeddings)
    await remember_dialogue(store)
    # "dhokla" means little to MiniLM; the lexical index knows the word.
    assert (await texts(store, "How did the dhokla turn out?", k=1))[0] == DIALOGUE[0][1]
    lexical = await texts(store, "How did the dhokla turn out?", k=1, mode="lexical")
    assert lexical == [DIALOGUE[0][1]]
    assert await texts(store, "zzz qqq", k=3, mode="lexical") == []


async def test_a_question_about_a_person_finds_their_statements(
        open_store: Opener, embeddings: LocalEmbeddings) -> None:
    store = open_store(embeddings)
    await remember_dialogue(store)
    found = await texts(store, "What did Ben cook?", k=3)
    assert set(found[:2]) <= {DIALOGUE[3][1], DIALOGUE[9][1]}
    found = await texts(store, "What did Ada cook?", k=1)
    assert found == [DIALOGUE[4][1]]


async def test_a_time_question_is_answered_from_the_right_session(
        open_store: Opener, embeddings: LocalEmbeddings) -> None:
    store = open_store(embeddings)
    await remember_dialogue(store)
    # Three cooking memories; "in May" picks the May evening's, "last week" September's.
    assert (await texts(store, "What did Ben cook in May?", k=1))[0] == DIALOGUE[3][1]
    found = await store.search("ada", "What did Ben cook last week?", k=1,
                               now=at(9, 27))
    assert found[0].record.text == DIALOGUE[9][1]
    assert found[0].record.created_at == at(9, 20)  # kept as given, not the import's time


async def test_both_engines_rank_alike(tmp_path: Path, redis_url: str,
                                       embeddings: LocalEmbeddings) -> None:
    faiss_store = FaissMemory(tmp_path / "memory", embeddings)
    client = Redis.from_url(redis_url)
    redis_store = RedisVectorMemory(client, embeddings, algorithm="FLAT")
    try:
        for store in (faiss_store, redis_store):
            await remember_dialogue(store)
            await store.add("bob", ["Ben: I cooked chili again."], {"speaker": "Ben"})
        for query in ("What did Ben cook in May?", "Where is Ada's office moving?",
                      "dog from the shelter", "Who won a chess tournament?", "Lyon"):
            for mode in ("hybrid", "dense", "lexical"):
                ranked = [await store.search("ada", query, k=10, mode=mode)  # type: ignore[arg-type]
                          for store in (faiss_store, redis_store)]
                assert [m.record.text for m in ranked[0]] == [m.record.text for m in ranked[1]]
                assert [m.score for m in ranked[0]] == pytest.approx(
                    [m.score for m in ranked[1]], abs=1e-4)
    finally:
        await client.aclose()


async def test_lexical_statistics_follow_deletes(open_store: Opener,
                                                 embeddings: LocalEmbeddings) -> None:
    store = open_store(embeddings)
    await remember_dialogue(store)
    [vespa] = [r for r in await store.list("ada") if "Vespa" in r.text]
    assert await store.delete("ada", vespa.id)
    assert await texts(store, "Vespa gearbox", k=3, mode="lexical") == []
    assert await store.clear("ada") == len(DIALOGUE) - 1
    assert await texts(store, "chili", k=3, mode="lexical") == []
