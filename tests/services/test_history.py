"""The history service's HTTP API on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect

from services.database import make_engine
from services.history.context import build_history
from services.history.settings import HistorySettings
from tests.services.history_support import (
    ADA,
    ADMIN,
    BOB,
    history_client,
    message,
    post,
    tokens,
)


@pytest.fixture
def open_history(history_settings: HistorySettings
                 ) -> Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]:
    def open_client(**overrides: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return history_client(history_settings.model_copy(update=overrides))

    return open_client


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


async def test_a_nul_is_stored_the_same_on_every_database(open_history: Any) -> None:
    """PostgreSQL's text cannot hold NUL, SQLite's can: both keep U+FFFD in its place,
    so a turn is stored, and read back, the same in both shapes."""
    async with open_history() as client:
        response = await post(client, ADA, "t", message("user", "a NUL \x00 here"),
                              {**message("assistant", "ok"), "meta": {"k\x00": ["v\x00"]}})
        page = await client.get("/history", headers=ADA, params={"thread_id": "t"})
    assert response.status_code == 201
    messages = {m["role"]: m for m in page.json()["messages"]}
    assert messages["user"]["content"] == "a NUL \ufffd here"
    assert messages["assistant"]["meta"] == {"k\ufffd": ["v\ufffd"]}


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



async def test_renaming_a_thread_long_untouched_answers_the_renamed_thread(
        open_history: Any) -> None:
    async with open_history() as client:
        await post(client, ADA, "old", message("user", "an old question"),
                   message("assistant", "an old answer"))
        for i in range(100):  # `old` drops out of the 100 most recently updated
            await post(client, ADA, f"newer-{i}", message("user", f"question {i}"))
        renamed = await client.patch("/history/threads/old", headers=ADA,
                                     json={"title": "Kept for later"})
        listed = (await client.get("/history/threads", headers=ADA,
                                   params={"limit": 500})).json()
    assert renamed.status_code == 200, renamed.text
    assert {k: renamed.json()[k] for k in ("id", "title", "message_count")} == {
        "id": "old", "title": "Kept for later", "message_count": 2}
    assert [t["title"] for t in listed if t["id"] == "old"] == ["Kept for later"]


def cursor_of(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


async def test_a_cursor_that_is_no_sequence_number_is_refused(open_history: Any) -> None:
    async with open_history() as client:
        await post(client, ADA, "t", message("user", "one"), message("assistant", "two"))
        refused = {text: await client.get("/history", headers=ADA, params={
            "thread_id": "t", "before": cursor_of(text)})
            for text in (str(2**63), "9" * 30, "-1", "1e3", " 5", "٣", "x")}
        refused["not base64"] = await client.get("/history", headers=ADA, params={
            "thread_id": "t", "before": "é"})
        widest = await client.get("/history", headers=ADA, params={
            "thread_id": "t", "before": cursor_of(str(2**63 - 1))})
        page = await client.get("/history", headers=ADA, params={"thread_id": "t"})
    for text, response in refused.items():
        assert response.status_code == 422, (text, response.text)
        assert "invalid cursor" in response.json()["detail"]
        assert "next_before" in response.json()["detail"]
    assert [m["content"] for m in widest.json()["messages"]] == ["two", "one"]
    assert [m["content"] for m in page.json()["messages"]] == ["two", "one"]


async def test_a_time_with_an_offset_is_stored_in_utc(open_history: Any) -> None:
    times = {"offset": "2026-01-01T12:00:00+02:00", "zulu": "2026-01-01T12:00:00Z",
             "naive": "2026-01-01T12:00:00", "day before": "2026-01-01T01:30:00+02:00",
             "west": "2026-01-01T12:00:00-05:00"}
    async with open_history() as client:
        await post(client, ADA, "t", *[message("user", name, created_at=at)
                                        for name, at in times.items()])
        page = (await client.get("/history", headers=ADA, params={"thread_id": "t"})).json()
    stored = {m["content"]: m["created_at"] for m in page["messages"]}
    # Sent back in UTC, saying so: the OpenAPI `date-time` format needs the zone.
    assert stored == {"offset": "2026-01-01T10:00:00Z", "zulu": "2026-01-01T12:00:00Z",
                      "naive": "2026-01-01T12:00:00Z", "day before": "2025-12-31T23:30:00Z",
                      "west": "2026-01-01T17:00:00Z"}


async def test_export_since_a_time_keeps_only_later_messages(open_history: Any) -> None:
    async with open_history() as client:
        await post(client, ADA, "t", message("user", "old", created_at="2026-01-01T09:00:00Z"),
                   message("user", "new", created_at="2026-01-02T09:00:00Z"))
        await post(client, ADA, "u", message("user", "older", created_at="2025-06-01T00:00:00"))
        response = await client.get("/history/export", headers=ADA,
                                    params={"since": "2026-01-02T10:00:00+02:00"})
        bad = await client.get("/history/export", headers=ADA, params={"since": "yesterday"})
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [m["message"]["content"] for m in lines if m["type"] == "message"] == ["new"]
    assert {t["thread"]["id"] for t in lines if t["type"] == "thread"} == {"t", "u"}
    assert bad.status_code == 422


async def test_reading_another_users_history_is_logged(open_history: Any,
                                                       caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    async with open_history() as client:
        await post(client, ADA, "secret", message("user", "my diary"))
        with caplog.at_level(logging.WARNING, logger="parley.audit"):
            await client.get("/history", headers=BOB,
                             params={"thread_id": "secret", "user_id": "ada"})
            await client.get("/history", headers=ADMIN,
                             params={"thread_id": "secret", "user_id": "ada"})
    actions = [(r.action, r.actor, r.target) for r in caplog.records  # type: ignore[attr-defined]
               if r.name == "parley.audit"]
    assert actions == [("read_history_refused", "bob", "ada"), ("read_history", "root", "ada")]
