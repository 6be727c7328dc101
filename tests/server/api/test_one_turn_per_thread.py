"""One turn at a time on a thread, whichever API starts it (server/api/thread_hold.py),
against a real Parley (uvicorn on 127.0.0.1, redis-server): a second message while the
first is answered gets 409 and changes nothing, as do deleting the thread and updating its
state; an Agent Protocol run that chose to queue runs after the message; a decision and an
MCP call hold the thread too; a turn whose client went away lets the thread go."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from graphs.context import thread_key
from tests.server.api.test_approval import decide, paused, two_postcards
from tests.server.api.test_mcp_face import mcp_session
from tests.server.conftest import AppFactory, Probe
from tests.support.agent_protocol import Server, api_key, scripted, settings_for

WAIT = "wait 3"  # the scripted model calls wait_long for 3 s: the turn is under way


def said(http: httpx.Client, message: str, thread: str) -> httpx.Response:
    return http.post("/chat", json={"message": message, "thread_id": thread})


def thread_messages(http: httpx.Client, thread: str) -> list[str]:
    state = http.get(f"/threads/{thread}/state")
    assert state.status_code == 200, state.text
    return [m["content"] for m in state.json()["values"]["messages"]
            if m["type"] in ("human", "ai") and m["content"]]


def test_a_second_message_while_the_first_is_answered_gets_409(ap_server: Server,
                                                               probe: Probe) -> None:
    with ap_server.client() as http, ap_server.client() as other, \
            ThreadPoolExecutor(1) as pool:
        thread = http.post("/chat", json={"message": "hi"}).json()["thread_id"]
        first = pool.submit(said, http, WAIT, thread)
        assert probe.started.wait(10)
        again = said(other, "are you there?", thread)
        assert again.status_code == 409, again.text
        assert "answering another message" in again.json()["detail"]
        assert again.headers["retry-after"] == "1"
        streamed = other.post("/chat/stream", json={"message": "and now?",
                                                    "thread_id": thread})
        assert streamed.status_code == 409, streamed.text
        assert first.result().status_code == 200
        assert first.result().json()["message"]["content"] == "Waited."
        # Once answered, the thread takes messages again (a streamed turn lets it go at
        # its end too), and the refused ones left nothing in it.
        streamed = other.post("/chat/stream", json={"message": "hi", "thread_id": thread})
        assert streamed.status_code == 200 and "event: done" in streamed.text
        after = said(other, "first", thread)
        assert after.status_code == 200, after.text
        assert after.json()["message"]["content"] == "Your first message was: hi"
        assert thread_messages(http, thread) == [
            "hi", "You said: hi", WAIT, "Waited.", "hi", "You said: hi", "first",
            "Your first message was: hi"]
    # Another user's thread of the same name is another thread: never busy because of it.
    with ap_server.client("bob") as bob:
        assert said(bob, "hi", thread).status_code == 200


def test_a_thread_is_not_deleted_or_changed_while_a_message_is_answered(
        ap_server: Server, probe: Probe) -> None:
    """A turn under way writes its checkpoint, its exchange and its transcript when it
    ends, which would bring a thread deleted in its middle back (or drop a state update
    given meanwhile): either API's deletion, and an update, get 409 then; the deletion
    goes through once the answer is written, for good."""
    with ap_server.client() as http, ap_server.client() as other, \
            ThreadPoolExecutor(1) as pool:
        thread = http.post("/chat", json={"message": "hi"}).json()["thread_id"]
        first = pool.submit(said, http, WAIT, thread)
        assert probe.started.wait(10)
        for path in (f"/chat/threads/{thread}", f"/threads/{thread}"):
            refused = other.delete(path)
            assert refused.status_code == 409, refused.text
            assert "then delete the thread again" in refused.json()["detail"]
        update = other.post(f"/threads/{thread}/state", json={
            "values": {"messages": [{"role": "user", "content": "lost"}]}})
        assert update.status_code == 409, update.text
        assert "then update its state again" in update.json()["detail"]
        assert first.result().status_code == 200
        assert thread_messages(http, thread) == ["hi", "You said: hi", WAIT, "Waited."]
        deleted = other.delete(f"/chat/threads/{thread}")
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["state"] is True
        assert other.get(f"/threads/{thread}/state").status_code == 404
        # The same name starts a new conversation: nothing of the old one came back.
        again = said(other, "first", thread)
        assert again.status_code == 200, again.text
        assert again.json()["message"]["content"] == "Your first message was: first"


def test_an_agent_protocol_run_queues_behind_a_message_or_is_refused(
        ap_server: Server, probe: Probe) -> None:
    with ap_server.client() as http, ap_server.client() as other, \
            ThreadPoolExecutor(2) as pool:
        thread = http.post("/chat", json={"message": "hi"}).json()["thread_id"]
        first = pool.submit(said, http, WAIT, thread)
        assert probe.started.wait(10)

        def run(strategy: str) -> httpx.Response:
            return other.post(f"/threads/{thread}/runs/wait", json={
                "assistant_id": "assistant", "multitask_strategy": strategy,
                "input": {"messages": [{"role": "user", "content": "queued"}]}})

        refused = run("reject")
        assert refused.status_code == 409, refused.text
        queued = pool.submit(run, "enqueue")
        assert first.result().status_code == 200
        assert queued.result().status_code == 200, queued.result().text
        assert thread_messages(http, thread)[-4:] == [WAIT, "Waited.", "queued",
                                                      "You said: queued"]


def test_a_run_that_would_interrupt_waits_for_a_message_instead(ap_server: Server,
                                                                 probe: Probe) -> None:
    """`interrupt` and `rollback` cancel runs; a message being answered is not a run, and
    its user is waiting for the answer: the run goes next."""
    with ap_server.client() as http, ap_server.client() as other, \
            ThreadPoolExecutor(2) as pool:
        thread = http.post("/chat", json={"message": "hi"}).json()["thread_id"]
        first = pool.submit(lambda: http.post("/chat/stream", json={
            "message": WAIT, "thread_id": thread}))
        assert probe.started.wait(10)
        run = other.post(f"/threads/{thread}/runs/wait", json={
            "assistant_id": "assistant", "multitask_strategy": "interrupt",
            "input": {"messages": [{"role": "user", "content": "stop that"}]}})
        assert run.status_code == 200, run.text
        streamed = first.result()
        assert "event: done" in streamed.text and "Waited." in streamed.text
        assert probe.cancelled == []
        assert thread_messages(http, thread)[-4:] == [WAIT, "Waited.", "stop that",
                                                      "You said: stop that"]


def test_a_decision_refused_for_a_busy_thread_runs_nothing_until_sent_again(
        make_auth_app: AppFactory, live: Any, redis_url: str, tmp_path: Path,
        probe: Probe) -> None:
    app = make_auth_app([two_postcards], **settings_for(redis_url, tmp_path / "data"))
    plain = redis.Redis.from_url(redis_url, decode_responses=True)
    with live(app) as url, httpx.Client(base_url=url, timeout=30, headers={
            "x-api-key": api_key(url, "ada")}) as http:
        thread = paused(http, "two postcards")["thread_id"]
        # One card decided: nothing runs yet, so a busy thread does not matter.
        user = http.get("/auth/me").json()["id"]
        busy = f"parley:ap:busy:{thread_key(str(user), thread)}"
        assert plain.set(busy, "another-turn", px=30_000)  # another message is answered
        assert decide(http, thread, call_id="c1", decision="approve").status_code == 202
        refused = decide(http, thread, call_id="c2", decision="approve")  # the last one
        assert refused.status_code == 409, refused.text
        assert probe.posted == []
        plain.delete(busy)
        sent_again = decide(http, thread, call_id="c2", decision="approve")
        assert sent_again.status_code == 200, sent_again.text
    plain.close()
    assert sorted(probe.posted) == ["Bob: 1", "Cy: 2"]


def test_a_message_while_a_run_holds_the_thread_gets_409(ap_server: Server,
                                                         probe: Probe) -> None:
    with ap_server.client() as http, ap_server.client() as other, \
            ThreadPoolExecutor(1) as pool:
        thread = http.post("/threads", json={}).json()["thread_id"]
        run = pool.submit(http.post, f"/threads/{thread}/runs/wait", json={
            "assistant_id": "assistant",
            "input": {"messages": [{"role": "user", "content": WAIT}]}})
        assert probe.started.wait(10)
        refused = said(other, "hello?", thread)
        assert refused.status_code == 409, refused.text
        assert run.result().status_code == 200, run.result().text
        assert said(other, "hello?", thread).status_code == 200


def test_a_decision_holds_the_thread_while_its_calls_run(ap_server: Server,
                                                         probe: Probe) -> None:
    probe.gate = threading.Event()
    with ap_server.client() as http, ap_server.client() as other, \
            ThreadPoolExecutor(1) as pool:
        waiting = paused(http)
        thread = waiting["thread_id"]
        decided = pool.submit(decide, http, thread, decision="approve")
        assert probe.posting.wait(10)  # the approved postcard is being sent
        refused = said(other, "post to Cy", thread)
        assert refused.status_code == 409, refused.text
        probe.gate.set()
        assert decided.result().status_code == 200, decided.result().text
        assert said(other, "hi", thread).status_code == 200
    assert probe.posted == ["Bob: Hello!"]


async def test_an_mcp_call_on_a_busy_thread_says_so(ap_server: Server,
                                                    probe: Probe) -> None:
    with ap_server.client() as http, ThreadPoolExecutor(1) as pool:
        thread = http.post("/chat", json={"message": "hi"}).json()["thread_id"]
        first = pool.submit(said, http, WAIT, thread)
        assert probe.started.wait(10)
        async with mcp_session(ap_server.url, {"x-api-key": ap_server.keys["ada"]}) as mcp:
            busy = await mcp.call_tool("ask_assistant", {"message": "x", "thread_id": thread})
            assert busy.isError and "answering another message" in str(busy.content)
            assert first.result().status_code == 200
            went_on = await mcp.call_tool("ask_assistant", {"message": "y",
                                                            "thread_id": thread})
            assert not went_on.isError, went_on.content


@pytest.mark.parametrize("path", ["/chat", "/chat/stream"])
def test_a_turn_whose_client_went_away_lets_the_thread_go(
        make_auth_app: AppFactory, live: Any, redis_url: str, tmp_path: Path, probe: Probe,
        path: str) -> None:
    # A stream's turn waits this long for its client to come back before it is cancelled.
    app = make_auth_app([scripted], **settings_for(redis_url, tmp_path / "data",
                                                   resume_grace_seconds=0.5))
    with live(app) as url:
        key = {"x-api-key": api_key(url, "ada")}
        with httpx.Client(base_url=url, headers=key, timeout=30) as http:
            thread = http.post("/chat", json={"message": "hi"}).json()["thread_id"]
            with httpx.Client(base_url=url, headers=key, timeout=1.0) as impatient, \
                    pytest.raises(httpx.ReadTimeout):
                impatient.post(path, json={"message": "wait 60", "thread_id": thread})
            assert probe.started.is_set()
            answer: Any = None
            for _ in range(100):  # the server sees the client gone and cancels the turn
                answer = said(http, "hi again", thread)
                if answer.status_code != 409:
                    break
                time.sleep(0.1)
            assert answer.status_code == 200, answer.text
            assert probe.cancelled == ["wait_long"]
