"""Publishing to the Redis Stream the history service consumes: finished turns, and
deletions of threads (in the same stream, so they apply in order with the turns)."""

from __future__ import annotations

from redis.asyncio import Redis

from services.history.schemas import ThreadDeletion, TurnEvent

DEFAULT_STREAM = "parley:turns"


async def publish_turn(redis: Redis, event: TurnEvent, *, stream: str = DEFAULT_STREAM,
                       maxlen: int = 1_000_000) -> str:
    """XADD the turn; it waits in the stream until a history consumer commits it."""
    entry_id = await redis.xadd(stream, {"turn": event.model_dump_json()}, maxlen=maxlen,
                                approximate=True)
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


async def publish_thread_deletion(redis: Redis, deletion: ThreadDeletion, *,
                                  stream: str = DEFAULT_STREAM, maxlen: int = 1_000_000) -> str:
    """XADD the deletion; the consumer applies it after the thread's earlier turns."""
    entry_id = await redis.xadd(stream, {"delete_thread": deletion.model_dump_json()},
                                maxlen=maxlen, approximate=True)
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
