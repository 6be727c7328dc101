"""The Agent Protocol's thread records, against a real redis-server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from server.agent_protocol.store import Store


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield Store(client, ttl=600)
    finally:
        await client.aclose()


async def test_a_touch_makes_a_thread_known_then_marks_it_used(store: Store) -> None:
    await store.touch_thread("ada", "t1", metadata={"graph_id": "assistant", "topic": "x"})
    first = await store.get_thread("ada", "t1")
    assert first is not None and first.status == "idle"
    assert first.metadata == {"graph_id": "assistant", "topic": "x"}

    # Metadata is the thread's own once set; the run's graph and status follow each use.
    await store.touch_thread("ada", "t1", metadata={"graph_id": "weather", "topic": "y"},
                             status="interrupted")
    second = await store.get_thread("ada", "t1")
    assert second is not None
    assert second.created_at == first.created_at
    assert second.updated_at >= first.updated_at
    assert second.status == "interrupted"
    assert second.metadata == {"graph_id": "weather", "topic": "x"}

    found = await store.search_threads("ada", metadata={"graph_id": "weather"})
    assert [t.thread_id for t in found] == ["t1"]
    assert await store.search_threads("bob") == []
    assert 0 < await store.redis.ttl(store.thread_key("ada", "t1")) <= 600


async def test_a_touch_queued_with_a_run_counts_the_run(store: Store) -> None:
    for _ in range(2):
        pipe = store.redis.pipeline(transaction=False)
        store.queue_touch(pipe, "ada", "t2", metadata={"graph_id": "assistant"},
                          status="busy", run_started=True)
        # One command, and no script for the pipeline to look up in a round trip first.
        assert len(pipe.command_stack) == 1 and not pipe.scripts
        await pipe.execute()
    raw = await store.redis.hgetall(store.thread_key("ada", "t2"))
    assert raw[b"runs"] == b"2" and raw[b"status"] == b"busy"
    assert json.loads(raw[b"metadata"]) == {}  # graph_id is kept beside it, as runs set it
    assert raw[b"graph_id"] == b"assistant"
