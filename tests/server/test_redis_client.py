"""The platform's Redis client reads replies with hiredis's C parser (the `redis[hiredis]`
dependency): checkpoints, the turn stream and the rate limit are read on every turn, and
the pure-Python parser costs about 50 µs more CPU a command (real redis-server)."""

from __future__ import annotations

from redis._parsers import _AsyncHiredisParser

from server.platform import redis_client


async def test_replies_are_parsed_by_hiredis(redis_url: str) -> None:
    client = redis_client(redis_url)
    try:
        assert await client.ping()
        connection = await client.connection_pool.get_connection()
        try:
            assert isinstance(connection._parser, _AsyncHiredisParser)
        finally:
            await client.connection_pool.release(connection)
    finally:
        await client.aclose()
