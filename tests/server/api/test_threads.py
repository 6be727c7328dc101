"""DELETE /chat/threads/{id}: the thread's state, transcript and exchanges are gone (the
agent starts afresh under that id), even when history had not stored its last turn yet;
facts stay; another user's thread is untouched."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from agents.fake import echo_first
from tests.server.test_gateway import first_human_texts, login


async def history_threads(client: httpx.AsyncClient, headers: dict[str, str],
                          count: int, until: str | None = None) -> list[str]:
    """The user's threads in history once it holds `count` of them (and `until`, if
    given): the consumer stores turns a moment after the answer."""
    for _ in range(200):
        ids = [t["id"] for t in (await client.get("/history/threads", headers=headers)).json()]
        if len(ids) >= count and (until is None or until in ids):
            return ids
        await asyncio.sleep(0.05)
    return ids


async def memories(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    return list((await client.get("/memories", headers=headers)).json())


async def test_deleting_a_thread_forgets_it_everywhere(make_app, client_for, tmp_path: Path,
                                                       redis_url: str) -> None:
    app = make_app([echo_first], auth_enabled=True, memory_enabled=True,
                   data_dir=tmp_path / "data", redis_url=redis_url)
    async with client_for(app) as client:
        ada, bob = await login(client, "ada"), await login(client, "bob")
        for text in ("My name is Ada.", "the launch code is 1234"):
            await client.post("/chat", headers=ada, json={"message": text, "thread_id": "t"})
        await client.post("/chat", headers=ada, json={"message": "other", "thread_id": "keep"})
        await client.post("/chat", headers=bob, json={"message": "bob's", "thread_id": "t"})
        assert set(await history_threads(client, ada, 2)) == {"t", "keep"}
        assert await history_threads(client, bob, 1) == ["t"]
        before = await memories(client, ada)
        assert any("1234" in m["text"] for m in before)

        stolen = await client.delete("/chat/threads/keep", headers=bob)  # Ada's id
        deleted = await client.delete("/chat/threads/t", headers=ada)
        # A thread deleted before history stored its turn: the turn waits in the stream
        # ahead of the deletion, so it cannot bring the thread back.
        await client.post("/chat", headers=ada, json={"message": "quick", "thread_id": "q"})
        hasty = await client.delete("/chat/threads/q", headers=ada)
        # At once again: the transcript's deletion may still be queued; the thread is gone.
        twice = await client.delete("/chat/threads/q", headers=ada)
        # Turns after the deletions are stored after them: once this one is, they are done.
        await client.post("/chat", headers=ada, json={"message": "mark", "thread_id": "m"})
        ada_threads = await history_threads(client, ada, 2, until="m")
        bob_threads = await history_threads(client, bob, 1)
        again = await client.delete("/chat/threads/t", headers=ada)
        after = await memories(client, ada)
        # The same id again: a new conversation, which the model sees from its start.
        app.state.model.calls.clear()
        fresh = await client.post("/chat", headers=ada,
                                  json={"message": "what did I say?", "thread_id": "t"})

    assert stolen.status_code == 404
    assert deleted.status_code == 200, deleted.text
    body = deleted.json()
    assert body["state"] is True and body["transcript"] is True and body["memories"] >= 1
    assert hasty.status_code == 200
    assert twice.status_code == 404, twice.text
    assert sorted(ada_threads) == ["keep", "m"]  # neither t nor q came back
    assert bob_threads == ["t"]  # Bob's own 't' is untouched
    assert again.status_code == 404 and "no thread 't'" in again.json()["detail"]
    assert not any("1234" in m["text"] for m in after)  # the exchange is gone...
    assert any(m["metadata"].get("kind") == "fact" for m in after)  # ...the fact stays
    assert fresh.json()["message"]["content"] == "Your first message was: what did I say?"
    assert all("the launch code is 1234" not in first_human_texts(call)
               for call in app.state.model.calls)


async def test_a_bad_thread_id_is_refused(make_app, client_for) -> None:
    async with client_for(make_app([echo_first], auth_enabled=True)) as client:
        ada = await login(client, "ada")
        response = await client.delete("/chat/threads/a%20b", headers=ada)
        anonymous = await client.delete("/chat/threads/t")
    assert response.status_code == 422 and "thread_id must be" in response.json()["detail"]
    assert anonymous.status_code == 401
