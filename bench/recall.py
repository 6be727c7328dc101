"""The memory side of `make bench`: the query's embedding, Parley's memory store at 1k,
10k and 100k memories, and the Redis window with the checkpointer Parley runs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage

from bench.graph import bench_builder
from bench.measure import percentiles


class RandomEmbeddings:
    """Unit vectors drawn from a seed per text: filling a store with 100,000 memories
    through the real model would take most of an hour; the search cost does not depend
    on where the vectors came from (their spread makes recall a worst case). The
    questions' vectors are drawn before the clock starts (`draw_ahead`): a timed search
    then costs the store's work and a dict look-up, not the drawing (about 0.1 to 0.3 ms
    a question), as the real query's embedding is timed on its own."""

    model_id = "random-384"

    def __init__(self) -> None:
        self._ahead: dict[str, Any] = {}

    def draw_ahead(self, texts: list[str]) -> None:
        self._ahead.update(zip(texts, self._draw(texts), strict=True))

    def embed_array(self, texts: list[str]) -> Any:
        import numpy as np

        if all(t in self._ahead for t in texts):
            return np.stack([self._ahead[t] for t in texts])
        return self._draw(texts)

    @staticmethod
    def _draw(texts: list[str]) -> Any:
        import hashlib

        import numpy as np

        rows = [np.random.default_rng(int.from_bytes(hashlib.blake2b(
            t.encode(), digest_size=8).digest(), "little")).standard_normal(384)
            for t in texts]
        return np.asarray(rows, dtype=np.float32)


class Sentences:
    """Memories and questions of words drawn by Zipf's law from a 20,000-word vocabulary,
    so the lexical index has what real text gives it: a few words in most memories (long
    postings) and many rare ones."""

    def __init__(self, seed: int = 7) -> None:
        import numpy as np

        self.rng = np.random.default_rng(seed)
        ranks = np.arange(1, 20_001)
        self.p = (1.0 / ranks) / (1.0 / ranks).sum()

    def make(self, count: int, words: int) -> list[str]:
        ids = self.rng.choice(len(self.p), size=(count, words), p=self.p)
        return [" ".join(f"w{i}" for i in row) for row in ids]


async def memory_benchmarks(results: dict[str, Any], redis_url: str, data: Path) -> None:
    from memory.embeddings import LocalEmbeddings

    recall: dict[str, Any] = {}
    for precision in ("float32", "int8"):
        embeddings = LocalEmbeddings(cache_size=0, precision=precision)
        embeddings.embed_array(["warm up"])
        key = "embed_query_ms" if precision == "float32" else "embed_query_ms_int8"
        recall[key] = percentiles([_timed(
            lambda i=i, e=embeddings: e.embed_array([f"where does my sister live? ({i})"]))
            for i in range(50)])
    recall["memory_turn_ms"] = await memory_turn(data / "memory-turn")
    recall.update(await store_search(data))
    results["recall"] = recall

    # The checkpointer and durability Parley runs with (server/platform.py, server/runner/).
    from redis.asyncio import Redis

    from memory.redis_checkpointer import RedisStringSaver

    graph_builder = bench_builder()
    redis = Redis.from_url(redis_url)
    try:
        saver = RedisStringSaver(redis, ttl_seconds=3600)
        graph = graph_builder.compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "bench:window"}}
        for _ in range(5):
            await graph.ainvoke({"messages": [HumanMessage("hi")]}, config,  # type: ignore[arg-type]
                                durability="exit")
        reads = []
        for _ in range(100):
            started = time.perf_counter()
            await saver.aget_tuple(config)  # type: ignore[arg-type]
            reads.append((time.perf_counter() - started) * 1000)
        turns = []
        for _ in range(30):
            started = time.perf_counter()
            await graph.ainvoke({"messages": [HumanMessage("hi")]}, config,  # type: ignore[arg-type]
                                durability="exit")
            turns.append((time.perf_counter() - started) * 1000)
    finally:
        await redis.aclose()
    results["redis_window"] = {"read": percentiles(reads), "turn_with_checkpoints": percentiles(
        turns)}


async def store_search(data: Path) -> dict[str, Any]:
    """Parley's memory store at 1k, 10k and 100k memories: a hybrid search's time (the
    lexical index included) and, once the index is no longer exact, how much of the exact
    top 4 a dense search finds."""
    import numpy as np

    from memory.faiss_store import FaissMemory
    from memory.vector_index import is_compact, is_exact
    from memory.vectors import unit_vectors

    recall: dict[str, Any] = {}
    random = RandomEmbeddings()
    sentences = Sentences()
    queries = sentences.make(200, 6)
    random.draw_ahead(queries)
    for size in (1_000, 10_000, 100_000):
        store = FaissMemory(data / f"memory-{size}", random)
        texts = sentences.make(size, 12)
        for start in range(0, size, 2_000):
            await store.add("bench", texts[start:start + 2_000])
        timings = []
        for query in queries:
            started = time.perf_counter()
            await store.search("bench", query, k=4)
            timings.append((time.perf_counter() - started) * 1000)
        recall[str(size)] = percentiles(timings)
        index = store._load("bench").index
        recall[str(size)]["index"] = ("exact" if is_exact(index) else
                                      "fast-scan + fp16 rerank" if is_compact(index) else
                                      "other")
        if not is_exact(index):  # what the compact index finds of the exact top 4
            vectors = unit_vectors(random, texts)
            hits = 0
            checked = queries[:50]
            for query in checked:
                q = unit_vectors(random, [query])[0]
                exact = {texts[n] for n in np.argsort(-(vectors @ q))[:4]}
                found = await store.search("bench", query, k=4, mode="dense")
                hits += len(exact & {m.record.text for m in found})
            recall[str(size)]["recall_at_4"] = round(hits / (4 * len(checked)), 3)
    return recall


async def memory_turn(folder: Path) -> dict[str, float]:
    """A turn's recall and remember, in process, once the question is embedded (the
    embedder's cache holds it, as it does when remember runs): memory's own cost."""
    from langchain_core.messages import AIMessage

    from graphs.deps import TurnContext
    from memory.embeddings import LocalEmbeddings
    from memory.faiss_store import FaissMemory
    from server.memory_hooks import make_recall, make_remember

    embeddings = LocalEmbeddings(cache_size=10_000)
    store = FaissMemory(folder, embeddings)
    texts = Sentences(seed=3).make(1_000, 12)
    await store.add("bench", texts)
    questions = [f"what is the answer to question {n}?" for n in range(330)]
    embeddings.embed_array(questions)
    recall = make_recall(store, k=4, min_score=0.35)
    remember = make_remember(store)
    ctx = TurnContext(user_id="bench", thread_id="t", agent="assistant")

    async def turn(question: str) -> None:
        asked = [HumanMessage(question)]
        await recall(ctx, asked)
        await remember(ctx, [asked[0], AIMessage("word0 word1 word2")])

    for question in questions[:30]:
        await turn(question)
    samples = []
    for question in questions[30:]:
        started = time.perf_counter()
        await turn(question)
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def _timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000



if __name__ == "__main__":  # `make bench-recall`: this part of `make bench` alone, printed
    import asyncio
    import json
    import os
    import shutil
    import tempfile

    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # the core `make bench` gives its client
    folder = Path(tempfile.mkdtemp(prefix="parley-bench-recall-"))
    try:
        print(json.dumps(asyncio.run(store_search(folder)), indent=2))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
