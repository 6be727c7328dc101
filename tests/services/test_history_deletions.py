"""Thread deletions ride the turn stream: applied after the thread's turns published
before them, so a turn still waiting cannot bring a deleted thread back."""

from __future__ import annotations

import uuid

from services.history.consumer import consume_once
from services.history.schemas import ThreadDeletion
from services.history.stream import publish_thread_deletion, publish_turn
from tests.services.history_support import stored_contents, turn


def deletion(user: str, thread: str) -> ThreadDeletion:
    return ThreadDeletion(event_id=uuid.uuid4().hex, user_id=user, thread_id=thread)


async def drain(redis, ctx) -> None:  # type: ignore[no-untyped-def]
    while await consume_once(redis, ctx, block_ms=10):
        pass


async def test_a_deletion_applies_after_the_turns_before_it(stream_ctx) -> None:
    redis, ctx = stream_ctx
    await publish_turn(redis, turn("ada", "t", "stored before", "yes"))
    await drain(redis, ctx)
    # Waiting in the stream when the user deletes the thread: gone with it.
    await publish_turn(redis, turn("ada", "t", "still queued", "ok"))
    await publish_turn(redis, turn("bob", "t", "bob's own", "fine"))
    await publish_thread_deletion(redis, deletion("ada", "t"))
    # The same id afterwards: a new thread.
    await publish_turn(redis, turn("ada", "t", "a new start", "hello"))
    await publish_thread_deletion(redis, deletion("ada", "never-existed"))
    await drain(redis, ctx)
    assert stored_contents(ctx, "ada") == ["a new start", "hello"]
    assert stored_contents(ctx, "bob") == ["bob's own", "fine"]
    assert (await redis.xpending(ctx.settings.stream, ctx.settings.group))["pending"] == 0


async def test_a_malformed_deletion_is_dead_lettered(stream_ctx) -> None:
    redis, ctx = stream_ctx
    await redis.xadd(ctx.settings.stream, {"delete_thread": '{"user_id": ""}'})
    await publish_turn(redis, turn("ada", "t", "kept", "yes"))
    await drain(redis, ctx)
    assert stored_contents(ctx, "ada") == ["kept", "yes"]
    dead = await redis.xrange(ctx.settings.dead_letter_stream)
    assert len(dead) == 1 and dead[0][1][b"turn"] == b'{"user_id": ""}'
