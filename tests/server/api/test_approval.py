"""Tool approval against a real Parley (uvicorn on 127.0.0.1, redis-server, auth on): a
call that needs approval (`send_postcard`, whose side effect is `probe.posted`) runs only
once its user decides, over /chat, /chat/stream, the Agent Protocol's SDK, and across a
restart; the APIs that cannot pause say where to approve, and nothing runs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage
from langgraph_sdk import get_client

from agents.fake import say
from tests.server.api.openai.support import login
from tests.server.conftest import AppFactory, Probe
from tests.support.agent_protocol import Server, api_key, scripted, settings_for


def paused(http: httpx.Client, text: str = "post to Bob", **body: Any) -> dict[str, Any]:
    answer = http.post("/chat", json={"message": text, **body})
    assert answer.status_code == 200, answer.text
    said = answer.json()
    assert said["message"] is None and said["approval"] is not None, said
    return said


def decide(http: httpx.Client, thread_id: str, **decision: Any) -> httpx.Response:
    return http.post(f"/chat/threads/{thread_id}/decisions", json=decision)


def sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    events, name = [], None
    for line in text.splitlines():
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and name:
            events.append((name, json.loads(line.split(":", 1)[1])))
            name = None
    return events


def test_a_call_runs_only_once_approved(ap_server: Server, probe: Probe) -> None:
    with ap_server.client() as http:
        tools = {t["name"]: t["requires_approval"] for t in http.get("/tools").json()}
        assert tools["send_postcard"] and not tools["add"]
        agents = {a["name"]: a for a in http.get("/agents").json()}
        assert agents["assistant"]["approval_required"] == ["send_postcard"]
        said = paused(http)
        approval = said["approval"]
        [waiting] = approval["calls"]
        assert waiting["tool"] == "send_postcard"
        assert waiting["args"] == {"to": "Bob", "text": "Hello!"}
        assert set(waiting["allowed_decisions"]) == {"approve", "edit", "reject", "respond"}
        assert approval["decide"] == f"/chat/threads/{said['thread_id']}/decisions"
        assert probe.posted == []  # nothing ran
        shown = http.get(f"/chat/threads/{said['thread_id']}/approval").json()
        assert shown["id"] == approval["id"]
        went_on = decide(http, said["thread_id"], id=approval["id"], decision="approve")
        assert went_on.status_code == 200, went_on.text
        assert went_on.json()["message"]["content"] == "Postcard: postcard sent to Bob"
        assert went_on.json()["turn_id"] == said["turn_id"]  # the same turn, gone on
        assert probe.posted == ["Bob: Hello!"]
        again = decide(http, said["thread_id"], decision="approve")
        assert again.status_code == 404  # decided: nothing waits any more
        assert probe.posted == ["Bob: Hello!"]


def test_an_edit_runs_with_new_arguments_and_a_bad_one_is_refused(
        ap_server: Server, probe: Probe) -> None:
    with ap_server.client() as http:
        said = paused(http)
        bad = decide(http, said["thread_id"], decision="edit", args={"text": "no address"})
        assert bad.status_code == 422
        assert "to" in bad.json()["detail"] and "send_postcard" in bad.json()["detail"]
        assert probe.posted == []
        good = decide(http, said["thread_id"], decision="edit",
                      args={"to": "Carol", "text": "Hi Carol"})
        assert good.status_code == 200, good.text
        assert probe.posted == ["Carol: Hi Carol"]
        assert good.json()["message"]["content"] == "Postcard: postcard sent to Carol"


def test_a_rejection_and_its_reason_reach_the_model(ap_server: Server,
                                                    probe: Probe) -> None:
    with ap_server.client() as http:
        said = paused(http)
        answer = decide(http, said["thread_id"], decision="reject", reason="too dear").json()
        assert probe.posted == []
        assert "rejected" in answer["message"]["content"]
        assert "too dear" in answer["message"]["content"]


def test_a_person_can_answer_in_the_tools_place(ap_server: Server, probe: Probe) -> None:
    with ap_server.client() as http:
        said = paused(http)
        answer = decide(http, said["thread_id"], decision="respond",
                        message="I posted it myself").json()
        assert probe.posted == []
        assert answer["message"]["content"] == "Postcard: I posted it myself"


def test_always_allow_skips_the_pause_until_revoked(ap_server: Server,
                                                   probe: Probe) -> None:
    with ap_server.client() as http:
        said = paused(http)
        decide(http, said["thread_id"], decision="approve", always_allow=True)
        assert http.get("/chat/approvals/always-allow").json() == {"tools": ["send_postcard"]}
        at_once = http.post("/chat", json={"message": "post to Dan"}).json()
        assert at_once["approval"] is None
        assert at_once["message"]["content"] == "Postcard: postcard sent to Dan"
        with ap_server.client("bob") as bob:  # one user's choice is theirs alone
            paused(bob, "post to Eve")
        assert http.delete("/chat/approvals/always-allow/send_postcard").status_code == 204
        assert http.delete("/chat/approvals/always-allow/send_postcard").status_code == 404
        paused(http, "post to Fay")
        assert probe.posted == ["Bob: Hello!", "Dan: Hello!"]


def test_writing_again_instead_of_deciding_leaves_the_call_unrun(ap_server: Server,
                                                                   probe: Probe) -> None:
    with ap_server.client() as http:
        said = paused(http)
        thread = said["thread_id"]
        went_on = http.post("/chat", json={"message": "never mind", "thread_id": thread})
        assert went_on.json()["message"]["content"] == "You said: never mind"
        assert http.get(f"/chat/threads/{thread}/approval").status_code == 404
        assert decide(http, thread, decision="approve").status_code == 404
    assert probe.posted == []


def test_only_the_threads_owner_can_decide(ap_server: Server, probe: Probe) -> None:
    with ap_server.client() as ada, ap_server.client("bob") as bob:
        said = paused(ada)
        thread = said["thread_id"]
        assert decide(bob, thread, decision="approve").status_code == 404
        assert bob.get(f"/chat/threads/{thread}/approval").status_code == 404
        assert probe.posted == []
        assert decide(ada, thread, decision="approve").status_code == 200
        assert probe.posted == ["Bob: Hello!"]


def test_the_stream_pauses_with_an_approval_event_and_goes_on_streaming(
        ap_server: Server, probe: Probe) -> None:
    with ap_server.client() as http:
        first = sse(http.post("/chat/stream", json={"message": "post to Bob"}).text)
        names = [name for name, _ in first]
        assert "approval" in names and "message" not in names and names[-1] == "done"
        approval = dict(first)["approval"]
        assert probe.posted == []
        rest = http.post(f"/chat/threads/{approval['thread_id']}/decisions",
                         json={"decision": "approve"},
                         headers={"Accept": "text/event-stream"})
        assert rest.headers["content-type"].startswith("text/event-stream")
        events = sse(rest.text)
        assert [n for n, _ in events if n != "token"] == ["tool_start", "tool_end", "message",
                                                        "done"]
        assert dict(events)["message"]["content"] == "Postcard: postcard sent to Bob"
        assert probe.posted == ["Bob: Hello!"]


def two_postcards(messages: list[Any]) -> AIMessage:
    """A model that sends two postcards in one step, then says what the tools answered."""
    if messages[-1].type == "tool":
        return say(" | ".join(str(m.content) for m in messages if m.type == "tool"))
    return AIMessage(content="", tool_calls=[
        {"name": "send_postcard", "args": {"to": "Bob", "text": "1"}, "id": "c1"},
        {"name": "send_postcard", "args": {"to": "Cy", "text": "2"}, "id": "c2"}])


def stored_postcard_answers(url: str, token: dict[str, str], thread: str
                            ) -> tuple[list[str], httpx.Response]:
    """The thread's answers about postcards once history holds one (the server resumes
    an expired approval by itself, a moment later), and the history page read."""
    answers: list[str] = []
    for _ in range(100):
        kept = httpx.get(f"{url}/history", headers=token, params={"thread_id": thread})
        answers = [m["content"] for m in kept.json().get("messages", [])
                   if m["role"] == "assistant" and m["content"].startswith("Postcard")]
        if answers:
            break
        time.sleep(0.1)
    return answers, kept


def test_several_calls_are_decided_one_by_one(make_auth_app: AppFactory, live: Any,
                                              redis_url: str, tmp_path: Path,
                                              probe: Probe) -> None:
    app = make_auth_app([two_postcards], **settings_for(redis_url, tmp_path / "data"))
    with live(app) as url, httpx.Client(base_url=url, timeout=30, headers={
            "x-api-key": api_key(url, "ada")}) as http:
        said = paused(http, "two postcards")
        assert [c["call_id"] for c in said["approval"]["calls"]] == ["c1", "c2"]
        unnamed = decide(http, said["thread_id"], decision="approve")
        assert unnamed.status_code == 422 and "call_id" in unnamed.json()["detail"]
        first = decide(http, said["thread_id"], call_id="c2", decision="reject")
        assert first.status_code == 202 and first.json()["waiting"] == ["c1"]
        assert probe.posted == []
        last = decide(http, said["thread_id"], call_id="c1", decision="approve")
        assert last.status_code == 200, last.text
        assert probe.posted == ["Bob: 1"]
        results = last.json()["message"]["content"].split(" | ")
        assert sorted(r.split(";")[0] for r in results) == [
            "The user rejected this call to send_postcard", "postcard sent to Bob"]


def test_a_restart_between_pause_and_decision_loses_nothing(
        make_auth_app: AppFactory, live: Any, redis_url: str, tmp_path: Path,
        probe: Probe) -> None:
    settings = settings_for(redis_url, tmp_path / "data")
    with live(make_auth_app([scripted], **settings)) as url:
        key = api_key(url, "ada")
        with httpx.Client(base_url=url, timeout=30, headers={"x-api-key": key}) as http:
            said = paused(http)
    assert probe.posted == []
    with live(make_auth_app([scripted], **settings)) as url, \
            httpx.Client(base_url=url, timeout=30, headers={"x-api-key": key}) as http:
        went_on = decide(http, said["thread_id"], id=said["approval"]["id"],
                         decision="approve")
        assert went_on.status_code == 200, went_on.text
        assert went_on.json()["message"]["content"] == "Postcard: postcard sent to Bob"
    assert probe.posted == ["Bob: Hello!"]


def test_an_approval_nobody_gives_expires_as_a_rejection_the_model_reads(
        make_auth_app: AppFactory, live: Any, redis_url: str, tmp_path: Path,
        probe: Probe) -> None:
    app = make_auth_app([scripted], **settings_for(redis_url, tmp_path / "data",
                                                   approval_timeout_seconds=0.5))
    with live(app) as url, httpx.Client(base_url=url, timeout=30, headers={
            "x-api-key": api_key(url, "ada")}) as http:
        said = paused(http)
        thread = said["thread_id"]
        token = {"Authorization": f"Bearer {login(url, 'ada')}"}
        answers, kept = stored_postcard_answers(url, token, thread)
        assert answers and "expired" in answers[0]
        tool = next(m for m in kept.json()["messages"] if m["role"] == "tool")
        assert tool["meta"]["approval"]["expired"] is True
        assert http.get(f"/chat/threads/{thread}/approval").status_code == 404
        assert decide(http, thread, decision="approve").status_code == 404
    assert probe.posted == []


def test_each_decision_is_kept_in_history_beside_the_call(ap_server: Server) -> None:
    with ap_server.client() as http:
        said = paused(http)
        decide(http, said["thread_id"], decision="edit", args={"to": "Cy", "text": "Yo"})
        token = {"Authorization": f"Bearer {login(ap_server.url, 'ada')}"}
        for _ in range(100):
            kept = httpx.get(f"{ap_server.url}/history", headers=token,
                             params={"thread_id": said["thread_id"]}).json()
            tools = [m for m in kept.get("messages", []) if m["role"] == "tool"]
            if tools:
                break
            time.sleep(0.1)
        assert tools, kept
        [result] = tools
        assert result["content"] == "postcard sent to Cy"
        record = result["meta"]["approval"]
        assert record["decision"] == "edit" and record["args"] == {"to": "Cy", "text": "Yo"}


async def test_the_agent_protocol_shows_the_interrupt_and_resumes_with_a_command(
        ap_server: Server, probe: Probe) -> None:
    client: Any = get_client(url=ap_server.url, api_key=ap_server.keys["ada"])
    thread_id = (await client.threads.create())["thread_id"]
    values = await client.runs.wait(thread_id, "assistant", input={
        "messages": [{"role": "user", "content": "post to Bob"}]})
    [interrupt] = values["__interrupt__"]
    [action] = interrupt["value"]["action_requests"]
    assert action["name"] == "send_postcard" and action["args"]["to"] == "Bob"
    assert interrupt["value"]["review_configs"][0]["allowed_decisions"][0] == "approve"
    assert (await client.threads.get(thread_id))["status"] == "interrupted"
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["approve"]
    assert state["tasks"][0]["interrupts"][0]["id"] == interrupt["id"]
    assert probe.posted == []
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await client.runs.wait(thread_id, "assistant", command={"resume": {"decisions": [
            {"type": "edit", "edited_action": {"name": "send_postcard", "args": {}}}]}})
    assert refused.value.response.status_code == 422
    assert "send_postcard" in refused.value.response.json()["detail"]
    assert (await client.threads.get(thread_id))["status"] == "interrupted"
    parts = [p async for p in client.runs.stream(
        thread_id, "assistant", stream_mode="values",
        command={"resume": {"decisions": [{"type": "edit", "edited_action": {
            "name": "send_postcard", "args": {"to": "Zoe", "text": "Hello!"}}}]}})]
    final = [p.data for p in parts if p.event == "values"][-1]
    assert final["messages"][-1]["content"] == "Postcard: postcard sent to Zoe"
    assert probe.posted == ["Zoe: Hello!"]
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_the_values_stream_ends_with_the_interrupt(ap_server: Server,
                                                         probe: Probe) -> None:
    client: Any = get_client(url=ap_server.url, api_key=ap_server.keys["ada"])
    thread_id = (await client.threads.create())["thread_id"]
    parts = [p async for p in client.runs.stream(thread_id, "assistant", input={
        "messages": [{"role": "user", "content": "post to Bob"}]}, stream_mode="values")]
    last = [p.data for p in parts if p.event == "values"][-1]
    assert last["__interrupt__"][0]["value"]["action_requests"][0]["name"] == "send_postcard"
    assert parts[-1].event == "end"
    assert probe.posted == []


@pytest.mark.parametrize("face", ["openai", "openai-stream", "langserve"])
def test_apis_that_cannot_pause_say_where_to_approve(ap_server: Server, probe: Probe,
                                                     face: str) -> None:
    with ap_server.client() as http:
        if face.startswith("openai"):
            answer = http.post("/v1/chat/completions", json={
                "model": "assistant", "stream": face == "openai-stream",
                "messages": [{"role": "user", "content": "post to Bob"}]})
            if face == "openai":
                text = answer.json()["choices"][0]["message"]["content"]
            else:
                chunks = [json.loads(line[5:]) for line in answer.text.splitlines()
                          if line.startswith("data:") and line[5:].strip() != "[DONE]"]
                text = "".join(c["choices"][0]["delta"].get("content") or ""
                               for c in chunks if c["choices"])
        else:
            answer = http.post("/agents/assistant/invoke", json={"input": {"messages": [
                {"type": "human", "content": "post to Bob"}]}})
            text = answer.json()["output"]["content"]
        assert answer.status_code == 200, answer.text
    assert "send_postcard" in text and "approval" in text and "/chat" in text
    assert probe.posted == []
