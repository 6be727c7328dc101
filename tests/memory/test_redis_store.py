"""What only the Redis engine has to get right: lost data, model changes, key names."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from memory.hashing_embeddings import HashingTestEmbeddings
from memory.redis_store import RedisMemoryError, RedisVectorMemory


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    redis = Redis.from_url(redis_url)
    yield redis
    await redis.aclose()


async def test_flushall_empties_and_the_next_write_rebuilds(client: Redis) -> None:
    store = RedisVectorMemory(client, HashingTestEmbeddings())  # HNSW, the default
    await store.add("ada", ["i like green tea"])
    await client.flushall()  # drops the index too
    assert await store.list("ada") == [] and await store.search("ada", "green tea") == []
    [record] = await store.add("ada", ["i ride a bike"])
    found = await store.search("ada", "ride a bike", k=3)
    assert [m.record.id for m in found] == [record.id]


async def test_another_embedding_size_is_a_clear_error(client: Redis) -> None:
    await RedisVectorMemory(client, HashingTestEmbeddings(dim=64)).add("ada", ["green tea"])
    other = RedisVectorMemory(client, HashingTestEmbeddings(dim=32))
    with pytest.raises(RedisMemoryError, match="another embedding model"):
        await other.search("ada", "green tea")
    with pytest.raises(RedisMemoryError, match="64-dimensional vectors but the embedding"):
        await other.add("ada", ["black coffee"])
    separate = RedisVectorMemory(client, HashingTestEmbeddings(dim=32), prefix="parley:mem32")
    await separate.add("ada", ["black coffee"])
    assert [r.text for r in await separate.list("ada")] == ["black coffee"]


async def test_keys_carry_a_hash_not_the_user_id(client: Redis) -> None:
    store = RedisVectorMemory(client, HashingTestEmbeddings())
    user = "ada} | @user:{*"  # tag syntax in a user id must not widen the filter
    await store.add(user, ["i like green tea"])
    await store.add("bob", ["i like green tea too"])
    keys = [k.decode() async for k in client.scan_iter(match="parley:mem:*")]
    assert len(keys) == 2 and not [k for k in keys if "ada" in k or "bob" in k]
    assert [m.record.text for m in await store.search(user, "green tea", k=5)] == [
        "i like green tea"]


async def test_settings_are_checked(redis_url: str) -> None:
    resp3 = Redis.from_url(redis_url, protocol=3)
    with pytest.raises(ValueError, match="RESP2"):
        RedisVectorMemory(resp3, HashingTestEmbeddings())
    await resp3.aclose()
    resp2 = Redis.from_url(redis_url)
    with pytest.raises(ValueError, match="unknown vector algorithm"):
        RedisVectorMemory(resp2, HashingTestEmbeddings(), algorithm="IVF")
    await resp2.aclose()
