"""The history service's turn stream on a real Redis: the consumer group, redelivery,
batching and the dead-letter stream, storing on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from services.history.app import create_app
from services.history.consumer import consume_once
from services.history.context import HistoryContext
from services.history.schemas import TurnRecord
from services.history.settings import HistorySettings
from services.history.stream import publish_turn
from tests.services.history_support import ADA, stored_contents, tokens, turn
from tests.support.live import serve_in_thread


async def test_turns_published_while_the_service_is_down_arrive_later(stream_ctx) -> None:
    redis, ctx = stream_ctx
    for i in range(5):  # no consumer runs: the turns wait in the stream
        await publish_turn(redis, turn("ada", "t", f"question {i}", f"answer {i}"))
    assert stored_contents(ctx, "ada") == []
    while await consume_once(redis, ctx, block_ms=10):
        pass
    assert stored_contents(ctx, "ada") == [x for i in range(5)
                                           for x in (f"question {i}", f"answer {i}")]
    pending = await redis.xpending(ctx.settings.stream, ctx.settings.group)
    assert pending["pending"] == 0


async def test_a_crash_before_ack_redelivers_without_duplicates(stream_ctx) -> None:
    redis, ctx = stream_ctx
    event = turn("ada", "t", "hello", "hi there")
    await publish_turn(redis, event)
    # A consumer reads and commits the turn, then dies before XACK.
    s = ctx.settings
    read = await redis.xreadgroup(s.group, "crashed", {s.stream: ">"}, count=10)
    entry_id = read[0][1][0][0]
    from services.history.consumer import _store

    _store(ctx, [event])
    await redis.xadd(s.stream, {"turn": turn("ada", "t", "later", "ok").model_dump_json()})
    import asyncio

    await asyncio.sleep(0.1)  # older than claim_idle_ms: another consumer takes it over
    while await consume_once(redis, ctx, block_ms=10):
        pass
    assert stored_contents(ctx, "ada") == ["hello", "hi there", "later", "ok"]
    pending = await redis.xpending(s.stream, s.group)
    assert pending["pending"] == 0
    assert entry_id


async def wait_for_contents(ctx: HistoryContext, user: str, count: int) -> list[str]:
    import asyncio

    for _ in range(100):
        contents = stored_contents(ctx, user)
        if len(contents) >= count:
            return contents
        await asyncio.sleep(0.05)
    return stored_contents(ctx, user)


async def test_the_running_consumer_batches_and_looks_for_stranded_entries_rarely(
        stream_ctx) -> None:
    from services.history.consumer import consumer_running

    redis, ctx = stream_ctx
    ctx.settings = ctx.settings.model_copy(update={"claim_idle_ms": 600_000})
    await redis.config_resetstat()
    async with consumer_running(ctx.settings.redis_url or "", ctx):
        for i in range(20):
            await publish_turn(redis, turn("ada", "t", f"question {i}", f"answer {i}"))
        contents = await wait_for_contents(ctx, "ada", 40)
    assert contents == [x for i in range(20) for x in (f"question {i}", f"answer {i}")]
    stats = await redis.info("commandstats")
    # Recovery (own pending + XAUTOCLAIM) ran at start, not once per turn.
    assert stats["cmdstat_xautoclaim"]["calls"] == 1
    assert (await redis.xpending(ctx.settings.stream, ctx.settings.group))["pending"] == 0


@pytest.mark.parametrize("sole_reader", [True, False])
async def test_a_sole_reader_takes_a_crashed_predecessor_s_entries_at_start(
        stream_ctx, sole_reader: bool) -> None:
    from services.history.consumer import consumer_running, ensure_group

    redis, ctx = stream_ctx
    ctx.settings = ctx.settings.model_copy(update={"claim_idle_ms": 600_000})
    await ensure_group(redis, ctx)
    await publish_turn(redis, turn("ada", "t", "hello", "hi there"))
    s = ctx.settings
    # The embedded server's previous process read the turn, then was killed before XACK.
    await redis.xreadgroup(s.group, "host-4242", {s.stream: ">"}, count=10)
    async with consumer_running(s.redis_url or "", ctx, sole_reader=sole_reader):
        contents = await wait_for_contents(ctx, "ada", 2)
    # Shared with other consumers, it must wait out claim_idle_ms: the entry may be
    # another live consumer's, still being stored.
    assert contents == (["hello", "hi there"] if sole_reader else [])
    assert (await redis.xpending(s.stream, s.group))["pending"] == (0 if sole_reader else 1)


def store_fails_once(monkeypatch: pytest.MonkeyPatch) -> list[list[TurnRecord]]:
    """The history database fails the consumer's first store; the list says it did."""
    from services.history import consumer

    real_store = consumer._store
    failures: list[list[TurnRecord]] = []

    def flaky_store(ctx: HistoryContext, events: list[TurnRecord]) -> None:
        if not failures:
            failures.append(events)
            raise RuntimeError("database unavailable")
        real_store(ctx, events)

    monkeypatch.setattr(consumer, "_store", flaky_store)
    return failures


async def test_a_failed_store_is_retried_by_the_running_consumer(
        stream_ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.history import consumer

    redis, ctx = stream_ctx
    ctx.settings = ctx.settings.model_copy(update={"claim_idle_ms": 600_000})
    failures = store_fails_once(monkeypatch)
    async with consumer.consumer_running(ctx.settings.redis_url or "", ctx):
        await publish_turn(redis, turn("ada", "t", "kept", "despite the failure"))
        contents = await wait_for_contents(ctx, "ada", 2)
    assert failures and contents == ["kept", "despite the failure"]
    assert (await redis.xpending(ctx.settings.stream, ctx.settings.group))["pending"] == 0


async def test_a_failure_while_taking_a_predecessor_s_entries_is_retried(
        stream_ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.history import consumer

    redis, ctx = stream_ctx
    ctx.settings = ctx.settings.model_copy(update={"claim_idle_ms": 600_000})
    await consumer.ensure_group(redis, ctx)
    await publish_turn(redis, turn("ada", "t", "left", "by the crash"))
    s = ctx.settings
    await redis.xreadgroup(s.group, "host-4242", {s.stream: ">"}, count=10)
    failures = store_fails_once(monkeypatch)
    async with consumer.consumer_running(s.redis_url or "", ctx, sole_reader=True):
        contents = await wait_for_contents(ctx, "ada", 2)
        await publish_turn(redis, turn("ada", "t", "and later", "still stored"))
        contents = await wait_for_contents(ctx, "ada", 4)
    # The consumer outlived the failure at start: the crashed turn and a new one stored.
    assert failures and contents == ["left", "by the crash", "and later", "still stored"]
    assert (await redis.xpending(s.stream, s.group))["pending"] == 0


async def test_a_read_of_many_turns_is_stored_in_a_few_statements(stream_ctx) -> None:
    from sqlalchemy import event, select

    from services.history import crud
    from services.history.models import Thread

    _redis, ctx = stream_ctx
    old = turn("ada", "old", "first question", "first answer")
    quiet = turn("ada", "quiet", "hello", "hi")
    for earlier in (old, quiet):
        with ctx.sessions() as session:
            crud.store_messages(session=session, user_id="ada", thread_id=earlier.thread_id,
                                agent="assistant", messages=earlier.messages)
            session.commit()

    def updated(thread: str) -> datetime:
        with ctx.sessions() as session:
            return session.execute(select(Thread.updated_at).where(
                Thread.user_id == "ada", Thread.id == thread)).scalar_one()

    before = {t: updated(t) for t in ("old", "quiet")}
    batch = [turn("ada", "new", "what is the time?", "noon"),
             turn("ada", "new", "and the date?", "today"),
             turn("ada", "old", "second question", "second answer"),
             quiet,  # redelivered: every id already stored
             turn("bob", "new", "bob's own thread", "yes")]
    batch.append(batch[1])  # the same turn twice in one read
    statements: list[str] = []
    event.listen(ctx.engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2].split()[0]))
    with ctx.sessions() as session:
        counts = crud.store_turns(session=session, turns=[
            crud.Turn(e.user_id, e.thread_id, e.agent, e.messages) for e in batch])
        session.commit()
    # ids, threads, insert threads, update threads, insert messages: not five per turn
    assert [s for s in statements if s in ("SELECT", "INSERT", "UPDATE")] == \
        ["SELECT", "SELECT", "INSERT", "UPDATE", "INSERT"]
    assert counts == [(2, 0), (2, 0), (2, 0), (0, 2), (2, 0), (0, 2)]
    assert stored_contents(ctx, "ada") == [
        "first question", "first answer", "hello", "hi", "what is the time?", "noon",
        "and the date?", "today", "second question", "second answer"]
    assert stored_contents(ctx, "bob") == ["bob's own thread", "yes"]
    with ctx.sessions() as session:
        titles = {user: title for user, title in session.execute(
            select(Thread.user_id, Thread.title).where(Thread.id == "new"))}
    assert titles == {"ada": "what is the time?", "bob": "bob's own thread"}
    assert updated("old") > before["old"] and updated("quiet") == before["quiet"]


async def test_poison_turns_go_to_the_dead_letter_stream(stream_ctx) -> None:
    redis, ctx = stream_ctx
    await redis.xadd(ctx.settings.stream, {"turn": "{not json"})
    await publish_turn(redis, turn("bob", "t", "fine", "good"))
    while await consume_once(redis, ctx, block_ms=10):
        pass
    assert stored_contents(ctx, "bob") == ["fine", "good"]
    dead = await redis.xrange(ctx.settings.dead_letter_stream)
    assert len(dead) == 1 and dead[0][1][b"turn"] == b"{not json"


async def test_a_turn_the_database_refuses_does_not_hold_back_its_read(
        stream_ctx, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import DataError

    from services.history import consumer, crud

    redis, ctx = stream_ctx
    # The database refuses this turn (as PostgreSQL refused text it cannot hold).
    bad = turn("bob", "t2", "refused", "answer")
    real = crud.store_turns

    def refusing(*, session: Any, turns: Any) -> Any:
        if any(t.thread_id == "t2" for t in turns):
            raise DataError("INSERT", {}, ValueError("the database refused this text"))
        return real(session=session, turns=turns)

    monkeypatch.setattr(crud, "store_turns", refusing)
    twice = turn("bob", "t3", "same id", "ignored")
    twice.messages[1].id = twice.messages[0].id  # one id twice in one turn: stored once
    for event in (turn("bob", "t1", "before", "ok"), bad, twice,
                  turn("bob", "t4", "after", "ok")):
        await publish_turn(redis, event)
    while await consumer.consume_once(redis, ctx, block_ms=10):
        pass
    assert stored_contents(ctx, "bob") == ["before", "ok", "same id", "after", "ok"]
    dead = await redis.xrange(ctx.settings.dead_letter_stream)
    assert [TurnRecord.model_validate_json(f[b"turn"]).thread_id for _id, f in dead] == ["t2"]
    assert (await redis.xpending(ctx.settings.stream, ctx.settings.group))["pending"] == 0


async def test_an_oversized_turn_is_refused_when_read(stream_ctx) -> None:
    redis, ctx = stream_ctx
    oversized = {**turn("bob", "t", "too long a user id", "").model_dump(mode="json"),
                 "user_id": "x" * 65}
    await redis.xadd(ctx.settings.stream, {"turn": json.dumps(oversized)})
    await publish_turn(redis, turn("bob", "t", "fine", "good"))
    while await consume_once(redis, ctx, block_ms=10):
        pass
    assert stored_contents(ctx, "bob") == ["fine", "good"]
    assert len(await redis.xrange(ctx.settings.dead_letter_stream)) == 1


async def test_the_app_consumes_in_its_lifespan_over_real_http(
        history_settings: HistorySettings, redis_url: str) -> None:
    import asyncio

    redis = Redis.from_url(redis_url)
    await publish_turn(redis, turn("ada", "live", "queued before start", "yes"))
    app = create_app(history_settings.model_copy(update={"redis_url": redis_url}),
                     tokens.verifier())
    with serve_in_thread(app) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            await publish_turn(redis, turn("ada", "live", "sent while running", "ok"))
            for _ in range(100):
                page = (await client.get("/history", headers=ADA,
                                         params={"thread_id": "live"})).json()
                if len(page.get("messages", [])) == 4:
                    break
                await asyncio.sleep(0.1)
            ready = (await client.get("/history/readyz")).json()
    await redis.aclose()
    assert [m["content"] for m in reversed(page["messages"])] == [
        "queued before start", "yes", "sent while running", "ok"]
    assert ready["status"] == "ready"



async def test_a_read_larger_than_one_in_list_is_stored_once(stream_ctx) -> None:
    from sqlalchemy import select

    from services.history import crud
    from services.history.models import Thread

    _redis, ctx = stream_ctx
    # 600 ids and 300 threads: more than one IN list each.
    turns = [crud.Turn("ada", f"t{i}", "assistant", e.messages)
             for i, e in enumerate(turn("ada", "x", f"q{i}", f"a{i}") for i in range(300))]
    for expected in ((2, 0), (0, 2)):  # the second time, every id and thread is known
        with ctx.sessions() as session:
            counts = crud.store_turns(session=session, turns=turns)
            session.commit()
        assert counts == [expected] * 300
    assert len(stored_contents(ctx, "ada")) == 600
    # New messages in all 300 known threads: every thread moves up, over two IN lists.
    with ctx.sessions() as session:
        before = {t: u for t, u in session.execute(select(Thread.id, Thread.updated_at))}
        grown = [crud.Turn("ada", f"t{i}", "assistant", e.messages)
                 for i, e in enumerate(turn("ada", "x", f"more {i}") for i in range(300))]
        assert crud.store_turns(session=session, turns=grown) == [(1, 0)] * 300
        session.commit()
        after = {t: u for t, u in session.execute(select(Thread.id, Thread.updated_at))}
    assert len(after) == 300 and all(after[t] > before[t] for t in after)
