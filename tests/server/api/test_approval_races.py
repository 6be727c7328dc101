"""Tool approval when decisions meet (docs/approval.md: "the second gets 409"), against a
real Parley (uvicorn on 127.0.0.1, redis-server): two decisions at once run the calls
once, one-by-one decisions sent together both count, a stale approval id or interrupt id
gets 409, and a claim lasts exactly as long as its run, whichever API took it; a
decision sent through /chat shows the Agent Protocol the thread's new status."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.server.api.openai.support import login
from tests.server.api.test_approval import decide, paused, two_postcards
from tests.server.conftest import AppFactory, Probe
from tests.support.agent_protocol import Server, api_key, settings_for

KEPT = "parley:approval:*"  # claims and one-by-one decisions; none once a decision ran


def kept(redis_url: str) -> list[str]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        keys = cast("list[str]", client.keys(KEPT))  # decoded: decode_responses
        return [k for k in keys if not k.endswith(":expiring")]
    finally:
        client.close()


def test_two_decisions_at_once_run_the_call_once(ap_server: Server, probe: Probe,
                                                 redis_url: str) -> None:
    probe.gate = threading.Event()
    with ap_server.client() as http, ap_server.client() as other, \
            ThreadPoolExecutor(1) as pool:
        said = paused(http)
        first = pool.submit(decide, http, said["thread_id"], decision="approve")
        assert probe.posting.wait(10)  # the first decision's run is sending the postcard
        second = decide(other, said["thread_id"], decision="approve")
        assert second.status_code == 409, second.text
        assert "another request" in second.json()["detail"]
        probe.gate.set()
        assert first.result().status_code == 200, first.result().text
    assert probe.posted == ["Bob: Hello!"]
    assert kept(redis_url) == []  # the claim went with the run


def test_a_stale_approval_id_gets_409_and_decides_nothing(ap_server: Server,
                                                          probe: Probe) -> None:
    with ap_server.client() as http:
        first = paused(http)
        thread = first["thread_id"]
        second = paused(http, "post to Cy", thread_id=thread)  # wrote again: a new one
        stale = decide(http, thread, id=first["approval"]["id"], decision="approve")
        assert stale.status_code == 409 and second["approval"]["id"] in stale.json()["detail"]
        assert probe.posted == []
        went_on = decide(http, thread, id=second["approval"]["id"], decision="approve")
        assert went_on.status_code == 200, went_on.text
    assert probe.posted == ["Cy: Hello!"]


def test_one_by_one_decisions_sent_together_both_count(
        make_auth_app: AppFactory, live: Any, redis_url: str, tmp_path: Path,
        probe: Probe) -> None:
    app = make_auth_app([two_postcards], **settings_for(redis_url, tmp_path / "data"))
    with live(app) as url:
        # An access token: an API key's use is written to the accounts database, where
        # two requests at once would wait on each other (SQLite).
        auth = {"Authorization": f"Bearer {login(url, 'ada')}"}
        for round_ in range(3):  # each round a new thread, both cards clicked at once
            with httpx.Client(base_url=url, timeout=30, headers=auth) as http:
                said = paused(http, f"two postcards {round_}")
            barrier = threading.Barrier(2)

            def approve(call_id: str, thread: str = said["thread_id"],
                        barrier: threading.Barrier = barrier) -> httpx.Response:
                with httpx.Client(base_url=url, timeout=30, headers=auth) as client:
                    barrier.wait()
                    return decide(client, thread, call_id=call_id, decision="approve")

            with ThreadPoolExecutor(2) as pool:
                answers = list(pool.map(approve, ["c1", "c2"]))
            assert sorted(a.status_code for a in answers) == [200, 202], \
                [a.text for a in answers]
            assert sorted(probe.posted) == sorted(["Bob: 1", "Cy: 2"] * (round_ + 1))
        assert kept(redis_url) == []  # the decisions went with the run that took them


def test_a_reloaded_page_sees_which_calls_are_decided(
        make_auth_app: AppFactory, live: Any, redis_url: str, tmp_path: Path,
        probe: Probe) -> None:
    app = make_auth_app([two_postcards], **settings_for(redis_url, tmp_path / "data"))
    with live(app) as url, httpx.Client(base_url=url, timeout=30, headers={
            "x-api-key": api_key(url, "ada")}) as http:
        said = paused(http, "two postcards")
        assert said["approval"]["decided"] == []
        assert decide(http, said["thread_id"], call_id="c2", decision="reject").status_code \
            == 202
        shown = http.get(f"/chat/threads/{said['thread_id']}/approval").json()
        assert shown["decided"] == ["c2"]
    assert probe.posted == []


def test_a_decision_whose_run_never_starts_can_be_sent_again(
        ap_server: Server, probe: Probe, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = ap_server.app.state.live.runs
    begin = runs.begin

    async def store_down(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(runs, "begin", begin)  # down for this one request only
        raise RedisConnectionError("the store went away")

    def streamed(http: httpx.Client, thread: str) -> httpx.Response:
        return http.post(f"/chat/threads/{thread}/decisions", json={"decision": "approve"},
                         headers={"Accept": "text/event-stream"})

    with ap_server.client() as http:
        said = paused(http)
        monkeypatch.setattr(runs, "begin", store_down)
        lost = streamed(http, said["thread_id"])
        assert lost.status_code == 503, lost.text
        assert probe.posted == []
        again = streamed(http, said["thread_id"])
        assert again.status_code == 200, again.text
        assert "Postcard: postcard sent to Bob" in again.text
    assert probe.posted == ["Bob: Hello!"]


def ap_resume(http: httpx.Client, thread: str, resume: Any, **body: Any) -> httpx.Response:
    return http.post(f"/threads/{thread}/runs/wait", json={
        "assistant_id": "assistant", "command": {"resume": resume}, **body})


def ap_paused(http: httpx.Client, text: str = "post to Bob") -> tuple[str, str]:
    thread = http.post("/threads", json={}).json()["thread_id"]
    values = http.post(f"/threads/{thread}/runs/wait", json={
        "assistant_id": "assistant", "input": {"messages": [
            {"role": "user", "content": text}]}}).json()
    return thread, values["__interrupt__"][0]["id"]


APPROVE = {"decisions": [{"type": "approve"}]}


def test_an_agent_protocol_resume_refused_for_its_options_holds_no_claim(
        ap_server: Server, probe: Probe, redis_url: str) -> None:
    with ap_server.client() as http:
        thread, _interrupt = ap_paused(http)
        refused = ap_resume(http, thread, APPROVE, interrupt_before=["no_such_node"])
        assert refused.status_code == 422, refused.text
        assert kept(redis_url) == []
        went_on = decide(http, thread, decision="approve")  # /chat, at once
        assert went_on.status_code == 200, went_on.text
    assert probe.posted == ["Bob: Hello!"]


def test_an_agent_protocol_run_holds_its_claim_until_it_ends(
        ap_server: Server, probe: Probe, redis_url: str) -> None:
    probe.gate = threading.Event()
    with ap_server.client() as http, ThreadPoolExecutor(1) as pool:
        thread, _interrupt = ap_paused(http)
        run = pool.submit(ap_resume, http, thread, APPROVE, durability="exit")
        assert probe.posting.wait(10)
        racing = decide(http, thread, decision="approve")
        assert racing.status_code == 409, racing.text
        probe.gate.set()
        assert run.result().status_code == 200, run.result().text
        assert kept(redis_url) == []  # released as the run ended
    assert probe.posted == ["Bob: Hello!"]


def test_an_agent_protocol_resume_naming_a_settled_interrupt_answers_nothing(
        ap_server: Server, probe: Probe) -> None:
    with ap_server.client() as http:
        thread, first = ap_paused(http)
        assert decide(http, thread, decision="approve").status_code == 200
        again = http.post(f"/threads/{thread}/runs/wait", json={
            "assistant_id": "assistant", "input": {"messages": [
                {"role": "user", "content": "post to Cy"}]}}).json()
        second = again["__interrupt__"][0]["id"]
        assert second != first
        stale = ap_resume(http, thread, {first: APPROVE})
        assert stale.status_code == 409 and second in stale.json()["detail"]
        assert probe.posted == ["Bob: Hello!"]
        named = ap_resume(http, thread, {second: APPROVE})
        assert named.status_code == 200, named.text
    assert probe.posted == ["Bob: Hello!", "Cy: Hello!"]


def test_a_chat_decision_on_an_agent_protocol_thread_leaves_it_idle(
        ap_server: Server, probe: Probe) -> None:
    with ap_server.client() as http:
        thread, _interrupt = ap_paused(http)
        assert http.get(f"/threads/{thread}").json()["status"] == "interrupted"
        assert decide(http, thread, decision="approve").status_code == 200
        assert http.get(f"/threads/{thread}").json()["status"] == "idle"
    assert probe.posted == ["Bob: Hello!"]
