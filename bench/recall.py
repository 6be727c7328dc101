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
    on where the vectors came from (their spread makes recall a worst case)."""

    def embed_array(self, texts: list[str]) -> Any:
        import hashlib

        import numpy as np

        rows = [np.random.default_rng(int.from_bytes(hashlib.blake2b(
            t.encode(), digest_size=8).digest(), "little")).standard_normal(384)
            for t in texts]
        return np.asarray(rows, dtype=np.float32)


async def memory_benchmarks(results: dict[str, Any], redis_url: str, data: Path) -> None:
    import numpy as np

    from memory.embeddings import LocalEmbeddings
    from memory.faiss_store import FaissMemory, is_exact
    from memory.vectors import unit_vectors

    embeddings = LocalEmbeddings(cache_size=0)
    embeddings.embed_array(["warm up"])
    recall: dict[str, Any] = {"embed_query_ms": percentiles([_timed(
        lambda i=i: embeddings.embed_array([f"where does my sister live? ({i})"]))
        for i in range(50)])}
    random = RandomEmbeddings()
    for size in (1_000, 10_000, 100_000):
        store = FaissMemory(data / f"memory-{size}", random)
        for start in range(0, size, 2_000):
            await store.add("bench", [f"memory {n}" for n in range(start, start + 2_000)
                                      if n < size])
        queries = [f"question {n}" for n in range(200)]
        timings = []
        for query in queries:
            started = time.perf_counter()
            await store.search("bench", query, k=4)
            timings.append((time.perf_counter() - started) * 1000)
        recall[str(size)] = percentiles(timings)
        index = store._load("bench").index
        recall[str(size)]["index"] = "exact" if is_exact(index) else "8-bit"
        if not is_exact(index):  # what the quantized index finds of the exact top 4
            vectors = unit_vectors(random, [f"memory {n}" for n in range(size)])
            hits = 0
            for query in queries[:50]:
                q = unit_vectors(random, [query])[0]
                exact = {f"memory {n}" for n in np.argsort(-(vectors @ q))[:4]}
                found = await store.search("bench", query, k=4)
                hits += len(exact & {m.record.text for m in found})
            recall[str(size)]["recall_at_4"] = round(hits / 200, 3)
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


def _timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000

