"""The history service on SQLite and PostgreSQL, and its turn stream on a real Redis."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import inspect

from services.database import make_engine
from services.history.app import create_app
from services.history.consumer import consume_once, ensure_group
from services.history.context import HistoryContext, build_history
from services.history.schemas import MessageIn, TurnEvent
from services.history.settings import HistorySettings
from services.history.stream import publish_turn
from tests.support.live import serve_in_thread
from tests.support.tokens import TokenFactory

tokens = TokenFactory()
ADA, BOB = tokens.headers("ada"), tokens.headers("bob")
ADMIN = tokens.headers("root", roles=("user", "admin"))


@pytest.fixture
def history_settings(database_url: str) -> HistorySettings:
    return HistorySettings(database_url=database_url, consumer="test-consumer", block_ms=10,
                           claim_idle_ms=50)


@pytest.fixture
def open_history(history_settings: HistorySettings) -> Callable[..., Any]:
    @asynccontextmanager
    async def open_client(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(history_settings.model_copy(update=overrides), tokens.verifier())
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://h") as c:
                yield c

    return open_client


def message(role: str, content: str, mid: str | None = None) -> dict[str, Any]:
    return {"id": mid or uuid.uuid4().hex, "role": role, "content": content}


async def post(client: httpx.AsyncClient, headers: dict[str, str], thread: str,
               *messages: dict[str, Any]) -> httpx.Response:
    return await client.post("/history/messages", headers=headers,
                             json={"thread_id": thread, "messages": list(messages)})


async def test_messages_threads_and_rename(open_history: Any, database_url: str) -> None:
    async with open_history() as client:
        created = await post(client, ADA, "t1", message("user", "Plan a trip to Porto"),
                             message("assistant", "Sure!"))
        assert created.status_code == 201 and created.json() == {"stored": 2, "duplicates": 0}
        threads = (await client.get("/history/threads", headers=ADA)).json()
        assert [(t["id"], t["title"], t["message_count"]) for t in threads] == [
            ("t1", "Plan a trip to Porto", 2)]
        renamed = await client.patch("/history/threads/t1", headers=ADA,
                                     json={"title": "Porto"})
        assert renamed.json()["title"] == "Porto"
        page = (await client.get("/history", headers=ADA, params={"thread_id": "t1"})).json()
        assert [m["content"] for m in page["messages"]] == ["Sure!", "Plan a trip to Porto"]
        assert page["next_before"] is None
    tables = set(inspect(make_engine(database_url)).get_table_names())
    assert {"threads", "messages", "alembic_version_history"} <= tables


async def test_posting_the_same_ids_again_changes_nothing(open_history: Any) -> None:
    async with open_history() as client:
        batch = [message("user", "hi", "m1"), message("assistant", "hello", "m2")]
        await post(client, ADA, "t", *batch)
        again = await post(client, ADA, "t", *batch, message("user", "more", "m3"))
        page = (await client.get("/history", headers=ADA, params={"thread_id": "t"})).json()
    assert again.json() == {"stored": 1, "duplicates": 2}
    assert [m["id"] for m in page["messages"]] == ["m3", "m2", "m1"]


async def test_a_thread_with_new_messages_moves_to_the_top(open_history: Any) -> None:
    async with open_history() as client:
        await post(client, ADA, "older", message("user", "first thread"))
        await post(client, ADA, "newer", message("user", "second thread"))
        before = [t["id"] for t in (await client.get("/history/threads", headers=ADA)).json()]
        await post(client, ADA, "newer", message("assistant", "a reply", "same-id"))
        await post(client, ADA, "older", message("assistant", "a reply"))
        # Redelivered: it changes nothing, so its thread stays where it is.
        await post(client, ADA, "newer", message("assistant", "a reply", "same-id"))
        after = (await client.get("/history/threads", headers=ADA)).json()
    assert before == ["newer", "older"]
    assert [(t["id"], t["title"], t["message_count"]) for t in after] == [
        ("older", "first thread", 2), ("newer", "second thread", 2)]


async def test_keyset_pagination_walks_every_message_once(open_history: Any) -> None:
    same_time = datetime(2026, 1, 1, 12, 0, 0).isoformat()
    async with open_history() as client:
        batch = [{**message("user", f"m{i}", f"id{i:03}"), "created_at": same_time}
                 for i in range(23)]
        await post(client, ADA, "long", *batch)
        seen: list[str] = []
        before = None
        while True:
            params = {"thread_id": "long", "limit": 5, **({"before": before} if before else {})}
            page = (await client.get("/history", headers=ADA, params=params)).json()
            seen += [m["id"] for m in page["messages"]]
            before = page["next_before"]
            if before is None:
                break
    assert seen == [f"id{i:03}" for i in reversed(range(23))]


async def test_users_see_only_their_own_data(open_history: Any) -> None:
    async with open_history() as client:
        await post(client, ADA, "secret", message("user", "my diary"))
        await post(client, BOB, "bobs", message("user", "bob here"))
        assert (await client.get("/history", headers=BOB,
                                 params={"thread_id": "secret"})).status_code == 404
        assert [t["id"] for t in (await client.get("/history/threads", headers=BOB)).json()] \
            == ["bobs"]
        assert (await client.patch("/history/threads/secret", headers=BOB,
                                   json={"title": "x"})).status_code == 404
        assert (await client.delete("/history/threads/secret", headers=BOB)).status_code == 404
        export = (await client.get("/history/export", headers=BOB)).text
        assert "my diary" not in export and "bob here" in export
        forbidden = await client.get("/history", headers=BOB,
                                     params={"thread_id": "secret", "user_id": "ada"})
        assert forbidden.status_code == 403 and "admin" in forbidden.text
        admin = await client.get("/history", headers=ADMIN,
                                 params={"thread_id": "secret", "user_id": "ada"})
        assert [m["content"] for m in admin.json()["messages"]] == ["my diary"]
        # Bob's thread of the same name is his own.
        await post(client, BOB, "secret", message("user", "bob's secret"))
        ada_page = (await client.get("/history", headers=ADA,
                                     params={"thread_id": "secret"})).json()
        assert [m["content"] for m in ada_page["messages"]] == ["my diary"]


async def test_export_and_delete(open_history: Any) -> None:
    async with open_history() as client:
        await post(client, ADA, "a", message("user", "one"), message("assistant", "two"))
        response = await client.get("/history/export", headers=ADA)
        lines = [json.loads(line) for line in response.text.splitlines()]
        assert response.headers["content-type"].startswith("application/x-ndjson")
        assert [line["type"] for line in lines] == ["thread", "message", "message"]
        assert (await client.delete("/history/threads/a", headers=ADA)).status_code == 204
        assert (await client.get("/history/threads", headers=ADA)).json() == []
        assert (await client.get("/history", headers=ADA,
                                 params={"thread_id": "a"})).status_code == 404


async def test_bad_input_is_refused_clearly(open_history: Any) -> None:
    async with open_history() as client:
        await post(client, ADA, "t", message("user", "x"))
        cases = [
            (await client.get("/history", headers=ADA, params={"thread_id": "t", "limit": 0}),
             422, "limit"),
            (await client.get("/history", headers=ADA, params={"thread_id": "t",
                                                                "before": "@@"}), 422, "cursor"),
            (await client.get("/history", headers=ADA), 422, "thread_id"),
            (await client.post("/history/messages", headers=ADA, json={"thread_id": "t",
                                                                       "messages": []}),
             422, "messages"),
            (await client.post("/history/messages", headers=ADA, json={
                "thread_id": "../x", "messages": [message("user", "x")]}), 422, "thread_id"),
            (await client.post("/history/messages", headers=ADA, json={
                "thread_id": "t", "messages": [message("robot", "x")]}), 422, "role"),
            (await client.get("/history/threads"), 401, "missing access token"),
            (await client.get("/history/threads",
                              headers={"Authorization": "Bearer nope"}), 401, "malformed"),
        ]
    for response, status, text in cases:
        assert response.status_code == status, response.text
        assert text in response.text


async def test_text_the_database_refuses_is_a_clear_error(open_history: Any,
                                                         database_url: str) -> None:
    async with open_history() as client:
        await post(client, ADA, "t", message("user", "kept"))
        response = await post(client, ADA, "t", message("user", "fine"),
                              message("assistant", "a NUL \x00 here"))
        if database_url.startswith("sqlite"):  # SQLite stores a NUL like any character
            assert response.status_code == 201
            return
        assert response.status_code == 422 and "NUL" in response.json()["detail"]
        page = await client.get("/history", headers=ADA, params={"thread_id": "t"})
        assert [m["content"] for m in page.json()["messages"]] == ["kept"]


def turn(user: str, thread: str, *contents: str) -> TurnEvent:
    roles = ["user", "assistant"]
    return TurnEvent(event_id=uuid.uuid4().hex, user_id=user, thread_id=thread,
                     agent="assistant", messages=[
                         MessageIn(id=uuid.uuid4().hex, role=roles[i % 2], content=c)  # type: ignore[arg-type]
                         for i, c in enumerate(contents)])


@pytest.fixture
async def stream_ctx(history_settings: HistorySettings, redis_url: str
                     ) -> AsyncIterator[tuple[Redis, HistoryContext]]:
    ctx = build_history(history_settings.model_copy(update={"redis_url": redis_url}),
                        tokens.verifier())
    ctx.start()
    redis = Redis.from_url(redis_url)
    await ensure_group(redis, ctx)
    yield redis, ctx
    await redis.aclose()
    ctx.close()


def stored_contents(ctx: HistoryContext, user: str) -> list[str]:
    from sqlalchemy import select

    from services.history.models import Message

    with ctx.sessions() as session:
        return list(session.scalars(select(Message.content).where(Message.user_id == user)
                                    .order_by(Message.seq)))


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


async def test_a_failed_store_is_retried_by_the_running_consumer(
        stream_ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.history import consumer

    redis, ctx = stream_ctx
    ctx.settings = ctx.settings.model_copy(update={"claim_idle_ms": 600_000})
    real_store = consumer._store
    failures: list[list[TurnEvent]] = []

    def flaky_store(ctx: HistoryContext, events: list[TurnEvent]) -> None:
        if not failures:
            failures.append(events)
            raise RuntimeError("database unavailable")
        real_store(ctx, events)

    monkeypatch.setattr(consumer, "_store", flaky_store)
    async with consumer.consumer_running(ctx.settings.redis_url or "", ctx):
        await publish_turn(redis, turn("ada", "t", "kept", "despite the failure"))
        contents = await wait_for_contents(ctx, "ada", 2)
    assert failures and contents == ["kept", "despite the failure"]
    assert (await redis.xpending(ctx.settings.stream, ctx.settings.group))["pending"] == 0


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
    # PostgreSQL refuses a NUL in a text column; SQLite stores it, so there the refusal is
    # injected for that turn.
    bad = turn("bob", "t2", "a \x00 byte", "answer")
    if database_url.startswith("sqlite"):
        real = crud.store_turns

        def refusing(*, session: Any, turns: Any) -> Any:
            if any(t.thread_id == "t2" for t in turns):
                raise DataError("INSERT", {}, ValueError("text fields cannot contain NUL"))
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
    assert [TurnEvent.model_validate_json(f[b"turn"]).thread_id for _id, f in dead] == ["t2"]
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


async def test_not_ready_when_the_database_is_unreachable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fastapi import FastAPI

    from server.embedded.redis_server import free_port
    from services.history.routes import build_router

    dead = f"postgresql+psycopg://nobody:nothing@127.0.0.1:{free_port()}/history"
    ctx = build_history(HistorySettings(database_url=dead), tokens.verifier())
    app = FastAPI()
    app.include_router(build_router(ctx))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://history") as client:
        alive = await client.get("/history/healthz")
        ready = await client.get("/history/readyz")
    assert alive.status_code == 200
    assert ready.status_code == 503 and ready.json()["status"] == "not ready"
