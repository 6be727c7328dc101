"""The same scripted turns through every API that runs one: a tool call, a failing tool,
the step limit, and a client that goes away. Each API reports them in its own format, and
every turn, whichever API ran it, gives one log line and one count."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, BaseMessage

from agents.fake import call, say
from tests.server.api.openai.support import login
from tests.server.api.test_chat import sse_events

LIMIT_NOTE = "I stopped after 2 steps without a final answer."


def scripted(messages: list[BaseMessage]) -> AIMessage:
    """Answers by what the user asked, so every API can run the same turns."""
    asked = next(m.text for m in reversed(messages) if m.type == "human")
    last = messages[-1]
    if asked == "loop":
        return call("add", a=1, b=1)
    if last.type == "tool":
        return say("That failed." if last.status == "error"  # type: ignore[attr-defined]
                   else f"The sum is {last.content}.")
    if asked == "add":
        return call("add", "Adding.", a=2, b=3)
    if asked == "fail":
        return call("add", a="two", b=3)
    if asked == "wait":
        return call("wait_long", seconds=60)
    return say("Hello.")


Face = Callable[[httpx.Client, str], str]  # runs a turn, gives what the client saw as text


def chat_json(client: httpx.Client, text: str) -> str:
    body = client.post("/chat", json={"message": text}).json()
    tools = " ".join(f"[{t['tool']}:{t['status']}]" for t in body["tool_calls"])
    return f"{tools} {body['message']['content']}"


def chat_sse(client: httpx.Client, text: str) -> str:
    events = sse_events(client.post("/chat/stream", json={"message": text}).text)
    shown = []
    for name, _id, data in events:
        if name == "tool_end":
            shown.append(f"[{data['tool']}:{data['status']}]")
        elif name == "message":
            shown.append(data["content"])
    assert events[-1][0] == "done"
    return " ".join(shown)


def langserve_invoke(client: httpx.Client, text: str) -> str:
    response = client.post("/agents/assistant/invoke", json={"input": {"messages": [
        {"type": "human", "content": text}]}})
    return str(response.json()["output"]["content"])


def langserve_stream(client: httpx.Client, text: str) -> str:
    response = client.post("/agents/assistant/stream", json={"input": {"messages": [
        {"type": "human", "content": text}]}})
    chunks = [json.loads(line[6:]) for line in response.text.splitlines()
              if line.startswith("data: ") and line[6:].startswith("{")]
    return "".join(c.get("content", "") for c in chunks)


def openai_plain(client: httpx.Client, text: str) -> str:
    body = client.post("/v1/chat/completions", json={
        "model": "assistant", "messages": [{"role": "user", "content": text}]}).json()
    return str(body["choices"][0]["message"]["content"])


def openai_stream(client: httpx.Client, text: str) -> str:
    raw = client.post("/v1/chat/completions", json={
        "model": "assistant", "stream": True,
        "messages": [{"role": "user", "content": text}]}).text
    payloads = [line[6:] for line in raw.splitlines() if line.startswith("data: ")]
    assert payloads[-1] == "[DONE]"
    return "".join(json.loads(p)["choices"][0]["delta"].get("content") or ""
                   for p in payloads[:-1] if json.loads(p)["choices"])


FACES: dict[str, Face] = {
    "chat": chat_json, "chat_stream": chat_sse, "langserve_invoke": langserve_invoke,
    "langserve_stream": langserve_stream, "openai": openai_plain, "openai_stream": openai_stream}

# What each API shows of each turn.
EXPECTED: dict[str, dict[str, str]] = {
    "add": {"chat": "[add:ok] The sum is 5.", "chat_stream": "[add:ok] The sum is 5.",
            "langserve_invoke": "Adding.\n\n🛠 add\n\nThe sum is 5.",
            "langserve_stream": "Adding.\n\n🛠 add\n\nThe sum is 5.",
            "openai": "The sum is 5.", "openai_stream": "Adding.\n\nThe sum is 5."},
    "fail": {"chat": "[add:error] That failed.", "chat_stream": "[add:error] That failed.",
             "langserve_invoke": "🛠 add\n\nThat failed.",
             "langserve_stream": "🛠 add\n\nThat failed.",
             "openai": "That failed.", "openai_stream": "That failed."},
}


@contextmanager
def server(make_auth_app: Any, live: Any) -> Iterator[tuple[Any, str, httpx.Client]]:
    app = make_auth_app([scripted], max_steps=2, rate_limit_per_minute=0)
    with live(app) as url:
        headers = {"Authorization": f"Bearer {login(url, 'ada')}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            yield app, url, client


def turns_counted(client: httpx.Client, outcome: str) -> float:
    found = re.search(rf'parley_turns_total{{agent="assistant",outcome="{outcome}"}} (\S+)',
                      client.get("/metrics").text)
    return float(found.group(1)) if found else 0.0


def turn_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "server.turns"
            and r.getMessage().startswith("turn ")]


@pytest.mark.parametrize("face", list(FACES))
def test_every_api_reports_the_same_turns_in_its_own_format(
        face: str, make_auth_app: Any, live: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="server.turns")
    with server(make_auth_app, live) as (_app, _url, client):
        seen = {text: FACES[face](client, text) for text in ("add", "fail", "loop")}
        counted = turns_counted(client, "ok")
    assert seen["add"] == EXPECTED["add"][face]
    assert seen["fail"] == EXPECTED["fail"][face]
    assert LIMIT_NOTE in seen["loop"]  # the step limit's note reaches every client
    assert counted == 3
    lines = turn_lines(caplog)
    assert len(lines) == 3 and {r.outcome for r in lines} == {"ok"}  # type: ignore[attr-defined]


STREAMS: dict[str, tuple[str, dict[str, Any]]] = {
    "chat_stream": ("/chat/stream", {"message": "wait"}),
    "langserve_stream": ("/agents/assistant/stream",
                         {"input": {"messages": [{"type": "human", "content": "wait"}]}}),
    "openai_stream": ("/v1/chat/completions", {
        "model": "assistant", "stream": True,
        "messages": [{"role": "user", "content": "wait"}]}),
    "chat": ("/chat", {"message": "wait"}),
    "openai": ("/v1/chat/completions", {
        "model": "assistant", "messages": [{"role": "user", "content": "wait"}]}),
}


@pytest.mark.parametrize("face", list(STREAMS))
def test_a_client_that_goes_away_cancels_its_turn_on_every_api(
        face: str, make_auth_app: Any, live: Any, probe: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="server.turns")
    path, body = STREAMS[face]
    with server(make_auth_app, live) as (app, _url, client):
        with (pytest.raises(httpx.ReadTimeout),
              httpx.Client(base_url=str(client.base_url), headers=client.headers,
                           timeout=httpx.Timeout(30, read=1.0)) as impatient,
              impatient.stream("POST", path, json=body) as response):
            for _ in response.iter_bytes():  # until the tool holds the turn
                pass
        assert probe.started.wait(20)
        deadline = time.monotonic() + 20
        while not (probe.cancelled and turns_counted(client, "cancelled")) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert probe.cancelled == ["wait_long"]
        assert turns_counted(client, "cancelled") == 1
        assert turns_counted(client, "ok") == 0
    assert len(app.state.model.calls) == 1  # the model was not asked to go on
    [line] = turn_lines(caplog)
    assert line.outcome == "cancelled"  # type: ignore[attr-defined]
