"""Message ids are chosen by clients, so they are unique per user: two users may pick the
same id, and a redelivered message is still stored once. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import event

from services.history import crud
from services.history.context import HistoryContext, build_history
from services.history.schemas import MessageIn
from services.history.settings import HistorySettings
from tests.services.history_support import ADA, BOB, history_client, message, post, tokens


@pytest.fixture
def history_ctx(history_settings: HistorySettings) -> Iterator[HistoryContext]:
    ctx = build_history(history_settings, tokens.verifier())
    ctx.start()
    yield ctx
    ctx.close()


async def test_two_users_may_import_the_same_message_ids(
        history_settings: HistorySettings) -> None:
    async with history_client(history_settings) as client:
        ada = await post(client, ADA, "t", message("user", "ada asks", "m1"),
                         message("assistant", "ada is answered", "m2"))
        bob = await post(client, BOB, "t", message("user", "bob asks", "m1"),
                         message("assistant", "bob is answered", "m2"))
        bob_again = await post(client, BOB, "t", message("user", "bob asks", "m1"))
        pages = {who: (await client.get("/history", headers=headers,
                                        params={"thread_id": "t"})).json()
                 for who, headers in (("ada", ADA), ("bob", BOB))}
        exports = {who: (await client.get("/history/export", headers=headers)).text
                   for who, headers in (("ada", ADA), ("bob", BOB))}
        deleted = await client.delete("/history/threads/t", headers=ADA)
        bob_after = (await client.get("/history", headers=BOB,
                                      params={"thread_id": "t"})).json()
    assert ada.json() == {"stored": 2, "duplicates": 0}
    assert bob.json() == {"stored": 2, "duplicates": 0}
    assert bob_again.json() == {"stored": 0, "duplicates": 1}
    assert [m["content"] for m in pages["ada"]["messages"]] == ["ada is answered", "ada asks"]
    assert [m["content"] for m in pages["bob"]["messages"]] == ["bob is answered", "bob asks"]
    for who, text in exports.items():
        contents = [line["message"]["content"] for line in map(json.loads, text.splitlines())
                    if line["type"] == "message"]
        assert contents == [f"{who} asks", f"{who} is answered"]
    # Ada's delete removes her m1 and m2 only.
    assert deleted.status_code == 204
    assert [m["content"] for m in bob_after["messages"]] == ["bob is answered", "bob asks"]


def test_a_batch_keeps_each_users_ids_apart(history_ctx: HistoryContext) -> None:
    def turn(user: str, thread: str, *ids: str) -> crud.Turn:
        return crud.Turn(user, thread, "assistant", [
            MessageIn(id=i, role="user", content=f"{user} {i}") for i in ids])

    batch = [turn("ada", "t", "m1", "m2"),
             turn("bob", "t", "m1", "m2"),  # the same ids, another user: stored
             turn("ada", "t", "m1", "m2"),  # redelivered within the batch: skipped
             turn("bob", "other", "m2", "m3")]  # bob's m2 again, in another thread
    statements: list[str] = []
    event.listen(history_ctx.engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2].split()[0]))
    with history_ctx.sessions() as session:
        first = crud.store_turns(session=session, turns=batch)
        session.commit()
    # One lookup of the (user, id) pairs and one of the threads, whatever the users.
    assert [s for s in statements if s in ("SELECT", "INSERT", "UPDATE")] == \
        ["SELECT", "SELECT", "INSERT", "INSERT"]
    with history_ctx.sessions() as session:
        again = crud.store_turns(session=session, turns=batch)
        session.commit()
        stored = {user: [m.content for m in crud.page_messages(
            session=session, user_id=user, thread_id="t", limit=10, before=None)[0]]
            for user in ("ada", "bob")}
    assert first == [(2, 0), (2, 0), (0, 2), (1, 1)]
    assert again == [(0, 2), (0, 2), (0, 2), (0, 2)]
    assert stored == {"ada": ["ada m2", "ada m1"], "bob": ["bob m2", "bob m1"]}


def test_a_read_of_many_users_ids_takes_one_lookup_per_in_list(
        history_ctx: HistoryContext) -> None:
    # 300 users with the same two ids: 600 (user, id) pairs, two parameters each.
    turns = [crud.Turn(f"user{i}", "t", None, [
        MessageIn(id=mid, role="user", content=mid) for mid in ("m1", "m2")])
        for i in range(300)]
    with history_ctx.sessions() as session:
        assert crud.store_turns(session=session, turns=turns) == [(2, 0)] * 300
        session.commit()
        assert crud.store_turns(session=session, turns=turns) == [(0, 2)] * 300


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_stored_ids_are_looked_up_through_the_index(history_ctx: HistoryContext) -> None:
    """Every turn stored asks which of its ids and threads are stored already: on SQLite
    (whose plans are fixed by rule, not by statistics) that must be an index search, not a
    scan whose cost grows with every message ever stored."""
    plans: list[str] = []

    def explain(conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            plans.extend(str(row[-1]) for row in rows)

    with history_ctx.sessions() as session:
        crud.store_messages(session=session, user_id="ada", thread_id="t", agent="assistant",
                            messages=[MessageIn(**message("user", "hello", "m1"))])
        session.commit()
    event.listen(history_ctx.engine, "before_cursor_execute", explain)
    try:
        with history_ctx.sessions() as session:
            crud.store_turns(session=session, turns=[
                crud.Turn("ada", "t", "assistant", [MessageIn(**message("user", "again", "m2"))]),
                crud.Turn("bob", "t", "assistant", [MessageIn(**message("user", "bob", "m1"))])])
            session.commit()
    finally:
        event.remove(history_ctx.engine, "before_cursor_execute", explain)
    assert plans and not [p for p in plans if p.startswith(("SCAN messages", "SCAN threads"))]
