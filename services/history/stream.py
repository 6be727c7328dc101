"""Publishing to the Redis Stream the history service consumes: finished turns, and
deletions of threads (in the same stream, so they apply in order with the turns)."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from services.history.schemas import ThreadDeletion, TurnRecord

# The one home of the turn stream's names: the agent servers publish here, the history
# service's consumer group reads here, and malformed entries go to the dead-letter stream.
TURN_STREAM = "parley:turns"
DEAD_LETTER_STREAM = "parley:turns:dead"
HISTORY_GROUP = "history"


async def publish_turn(redis: Redis, event: TurnRecord, *, stream: str = TURN_STREAM,
                       maxlen: int = 1_000_000) -> str:
    """XADD the turn; it waits in the stream until a history consumer commits it."""
    entry_id = await redis.xadd(stream, {"turn": event.model_dump_json()}, maxlen=maxlen,
                                approximate=True)
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


async def publish_thread_deletion(redis: Redis, deletion: ThreadDeletion, *,
                                  stream: str = TURN_STREAM, maxlen: int = 1_000_000) -> str:
    """XADD the deletion; the consumer applies it after the thread's earlier turns."""
    entry_id = await redis.xadd(stream, {"delete_thread": deletion.model_dump_json()},
                                maxlen=maxlen, approximate=True)
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


def deletion_key(user_id: str, thread_id: str) -> str:
    """Set by the agent server once a thread's deletion is published, for as long as the
    transcript may still be in history: a message on the thread meanwhile must not rebuild
    it from there (docs/api.md)."""
    return f"parley:thread-deletion:{user_id}:{thread_id}"


async def deletion_queued(redis: Any, user_id: str, thread_id: str) -> bool:
    """Whether the thread was deleted lately: its transcript's deletion is published, and
    the history service may not have applied it yet."""
    return redis is not None and bool(await redis.exists(deletion_key(user_id, thread_id)))


async def mark_deletion_queued(redis: Any, user_id: str, thread_id: str, *,
                               seconds: int) -> None:
    """Sets the marker `deletion_queued` reads, for `seconds`."""
    await redis.set(deletion_key(user_id, thread_id), 1, ex=seconds)
