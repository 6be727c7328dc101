"""Short-term memory on a real Redis: the window folds into a running summary, and a thread
Redis lost is rebuilt from the history service."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import redis as redis_sync
from langchain_core.messages import AIMessage, BaseMessage

from agents.fake import say
from memory.window import SUMMARY_PROMPT, tokens
from tests.server.test_gateway import login


def responder(messages: list[BaseMessage]) -> AIMessage:
    system = messages[0].text
    if system.startswith(SUMMARY_PROMPT):
        # A faithful summarizer: it keeps every line the user said.
        said = [line for line in messages[1].text.splitlines()
                if line.startswith(("User:", "Earlier summary:")) or "code" in line]
        return say("Summary so far: " + " | ".join(said))
    return say(f"Answer number {len(messages)}.")


async def history_holds(client: Any, headers: dict[str, str], thread: str, count: int
                        ) -> None:
    """Waits until the history service holds `count` messages of the thread."""
    for _ in range(100):
        page = (await client.get("/history", headers=headers,
                                 params={"thread_id": thread})).json()
        if len(page.get("messages", [])) == count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"history never held {count} messages of {thread!r}")


async def test_a_fact_from_turn_one_is_used_in_turn_twelve(make_app, client_for,
                                                           redis_url) -> None:
    app = make_app([responder], redis_url=redis_url, window_tokens=150)
    async with client_for(app) as client:
        first = await client.post("/chat", json={"message": "My locker code is 4312."})
        thread = first.json()["thread_id"]
        for i in range(10):
            await client.post("/chat", json={"message": f"Small talk number {i}, "
                                             "nothing important at all here.",
                                             "thread_id": thread})
        await client.post("/chat", json={"message": "What is my locker code?",
                                          "thread_id": thread})
    agent_calls = [c for c in app.state.model.calls if not c[0].text.startswith(SUMMARY_PROMPT)]
    summaries = [c for c in app.state.model.calls if c[0].text.startswith(SUMMARY_PROMPT)]
    last = agent_calls[-1]
    assert summaries, "the window never folded"
    assert "My locker code is 4312." not in [m.text for m in last[1:]]  # folded away...
    assert "4312" in last[0].text  # ...but carried in the running summary
    # The window the model saw, before the new question, stayed within its budget.
    assert tokens(last[1:-1]) <= 150 < tokens([m for c in agent_calls for m in c[1:]])


async def test_a_thread_lost_by_redis_is_rebuilt_from_history(make_app, client_for,
                                                              redis_url) -> None:
    app = make_app([say("Got it.")], auth_enabled=True, redis_url=redis_url)
    async with client_for(app) as client:
        ada = await login(client, "ada")
        await client.post("/chat", headers=ada, json={"message": "I parked on level 3.",
                                                      "thread_id": "car"})
        await client.post("/chat", headers=ada, json={"message": "Near the blue door.",
                                                      "thread_id": "car"})
        await history_holds(client, ada, "car", 4)  # both turns
        client_redis = redis_sync.Redis.from_url(redis_url)
        client_redis.flushall()  # Redis loses every thread (an expiry would do the same)
        client_redis.close()
        await client.post("/chat", headers=ada, json={"message": "Where did I park?",
                                                      "thread_id": "car"})
        for _ in range(100):
            page = (await client.get("/history", headers=ada,
                                     params={"thread_id": "car", "limit": 50})).json()
            if len(page.get("messages", [])) == 6:
                break
            await asyncio.sleep(0.05)
    texts = [m.text for m in app.state.model.calls[-1][1:]]
    assert texts == ["I parked on level 3.", "Got it.", "Near the blue door.", "Got it.",
                     "Where did I park?"]
    # Nothing was stored twice when the rebuilt thread went on.
    assert [m["content"] for m in reversed(page["messages"])] == [
        "I parked on level 3.", "Got it.", "Near the blue door.", "Got it.",
        "Where did I park?", "Got it."]


async def test_redis_restarted_mid_conversation_loses_nothing(make_app, client_for,
                                                              tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agents.fake import echo_first
    from server.embedded.redis_server import start_redis

    redis = start_redis(tmp_path / "redis")
    try:
        app = make_app([echo_first], redis_url=redis.url)
        async with client_for(app) as client:
            first = (await client.post("/chat", json={"message": "remember the lighthouse"}
                                       )).json()
            redis.stop()  # Redis goes down mid-conversation and comes back (AOF on disk)
            redis = start_redis(tmp_path / "redis", port=redis.port)
            again = (await client.post("/chat", json={
                "message": "and now?", "thread_id": first["thread_id"]})).json()
    finally:
        redis.stop()
    assert again["error"] is None
    assert again["message"]["content"] == "Your first message was: remember the lighthouse"


async def test_a_deleted_thread_is_not_rebuilt_while_its_transcript_deletion_waits(
        make_app, client_for, redis_url, tmp_path) -> None:
    """The transcript's deletion goes to the history service down the turn stream; until
    it is applied, the next message on the same thread id finds no state and a transcript
    still there. It must start afresh, not rebuild the thread it deleted (this happened
    when the history service lagged)."""
    app = make_app([say("Got it.")], auth_enabled=True, redis_url=redis_url)
    async with client_for(app) as client:
        ada = await login(client, "ada")
        await client.post("/chat", headers=ada, json={"message": "I parked on level 3.",
                                                      "thread_id": "car"})
        await history_holds(client, ada, "car", 2)
        # A long transaction holds the history database's write lock (readers go on, as
        # WAL lets them): the deletion waits in the turn stream, as behind a slow service.
        database = sqlite3.connect(tmp_path / "data" / "history.db", isolation_level=None)
        database.execute("BEGIN IMMEDIATE")
        try:
            deleted = await client.delete("/chat/threads/car", headers=ada)
            assert deleted.status_code == 200, deleted.text
            still = (await client.get("/history", headers=ada,
                                      params={"thread_id": "car"})).json()
            assert len(still["messages"]) == 2  # the deletion is still on its way
            await client.post("/chat", headers=ada, json={"message": "Where did I park?",
                                                          "thread_id": "car"})
        finally:
            database.execute("ROLLBACK")
            database.close()
        for _ in range(100):  # the deletion, then the new turn, reach the history service
            page = (await client.get("/history", headers=ada,
                                     params={"thread_id": "car"})).json()
            if [m["content"] for m in page.get("messages", [])] == ["Got it.",
                                                                      "Where did I park?"]:
                break
            await asyncio.sleep(0.05)
    assert [m.text for m in app.state.model.calls[-1][1:]] == ["Where did I park?"]
    assert [m["content"] for m in reversed(page["messages"])] == ["Where did I park?",
                                                                  "Got it."]
