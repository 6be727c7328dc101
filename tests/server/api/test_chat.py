"""`/chat`, `/chat/stream`, `/agents`, `/tools`, health and bad input, in-process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from agents.fake import call, say


def sse_events(text: str) -> list[tuple[str, str, dict[str, Any]]]:
    events = []
    for block in text.replace("\r\n", "\n").strip().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.partition(": ")
            fields[key] = value
        if "event" in fields:
            events.append((fields["event"], fields.get("id", ""),
                           json.loads(fields.get("data") or "{}")))
    return events


async def test_agents_and_tools_are_listed(make_app, client_for) -> None:
    async with client_for(make_app([say("hi")])) as client:
        agents = (await client.get("/agents")).json()
        tools = (await client.get("/tools")).json()
    by_name = {a["name"]: a for a in agents}
    assert {"assistant", "weather", "reports", "summarizer", "translator"} <= set(by_name)
    assert set(by_name["assistant"]["tools"]) == {"add", "wait_long", "send_postcard"}
    assert by_name["weather"]["tools"] == []  # its tool is not among this test's tools
    add = next(t for t in tools if t["name"] == "add")
    assert add["source"] == "builtin"
    assert add["args_schema"]["properties"]["a"]["type"] == "integer"
    assert add["description"] == "Add two whole numbers."


async def test_chat_answers_and_keeps_the_thread(make_app, client_for) -> None:
    app = make_app([say("Hello Ada."), say("Your name is Ada.")], cycle=False)
    async with client_for(app) as client:
        first = (await client.post("/chat", json={"message": "I am Ada"})).json()
        assert first["message"]["content"] == "Hello Ada."
        second = (await client.post("/chat", json={"message": "Who am I?",
                                                   "thread_id": first["thread_id"]})).json()
    assert second["message"]["content"] == "Your name is Ada."
    assert second["thread_id"] == first["thread_id"]
    assert "I am Ada" in [m.content for m in app.state.model.calls[1]]


async def test_chat_reports_tool_calls(make_app, client_for) -> None:
    app = make_app([call("add", a=20, b=22), say("It is 42.")], cycle=False)
    async with client_for(app) as client:
        body = (await client.post("/chat", json={"message": "20+22?"})).json()
    assert body["message"]["content"] == "It is 42."
    assert [(t["tool"], t["status"], t["output"]) for t in body["tool_calls"]] == [
        ("add", "ok", "42")]


async def test_stream_events_come_in_order_with_ids(make_app, client_for) -> None:
    app = make_app([call("add", "Adding.", a=1, b=2), say("That makes 3.")], cycle=False)
    async with client_for(app) as client:
        response = await client.post("/chat/stream", json={"message": "1+2", "agent": "assistant"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    names = [e[0] for e in events]
    assert names == ["token", "tool_start", "tool_end",
                     "token", "token", "token", "token", "token", "message", "done"]
    ids = [e[1] for e in events]
    turn = ids[0].split(":")[0]
    assert ids == [f"{turn}:{i}" for i in range(len(events))]
    assert events[1][2]["args"] == {"a": 1, "b": 2}
    assert events[2][2]["output"] == "3"
    assert events[-2][2]["content"] == "That makes 3."
    assert events[-1][2]["thread_id"] == events[-2][2]["thread_id"]


async def test_model_failure_is_an_error_event_not_a_500(make_app, client_for) -> None:
    def explode(_messages):  # type: ignore[no-untyped-def]
        raise ConnectionError("model server down")

    async with client_for(make_app([explode])) as client:
        response = await client.post("/chat/stream", json={"message": "hi"})
        plain = await client.post("/chat", json={"message": "hi"})
    names = [e[0] for e in sse_events(response.text)]
    assert names == ["error", "done"]
    assert "model server down" in sse_events(response.text)[0][2]["message"]
    assert plain.status_code == 200 and "model server down" in plain.json()["error"]


async def test_bad_input_gets_clear_4xx(make_app, client_for) -> None:
    app = make_app([say("ok")], max_message_chars=50, max_request_bytes=2000)
    async with client_for(app) as client:
        cases = {
            "empty": await client.post("/chat", json={"message": "   "}),
            "missing": await client.post("/chat", json={"agent": "assistant"}),
            "too_long": await client.post("/chat", json={"message": "x" * 51}),
            "unknown_agent": await client.post("/chat/stream",
                                               json={"message": "hi", "agent": "nope"}),
            "not_json": await client.post("/chat", content=b"{not json",
                                          headers={"content-type": "application/json"}),
            "bad_thread": await client.post("/chat", json={"message": "hi",
                                                           "thread_id": "../etc"}),
            "huge_body": await client.post("/chat", json={"message": "y" * 5000}),
            "huge_chunked": await client.post("/chat", content=_chunked(b'{"message": "',
                                                                        b"y" * 5000, b'"}'),
                                              headers={"content-type": "application/json"}),
            "huge_chunked_langserve": await client.post(
                "/agents/assistant/invoke", content=_chunked(b"z" * 5000),
                headers={"content-type": "application/json"}),
        }
    expected = {"empty": (422, "message is empty"), "missing": (422, "message: Field required"),
                "too_long": (413, "the limit is 50"), "unknown_agent": (404, "choose one of"),
                "not_json": (422, "not valid JSON"), "bad_thread": (422, "thread_id must be"),
                "huge_body": (413, "over 2000 bytes"),
                "huge_chunked": (413, "over 2000 bytes"),
                "huge_chunked_langserve": (413, "over 2000 bytes")}
    for name, (status, text) in expected.items():
        response: httpx.Response = cases[name]
        assert response.status_code == status, (name, response.text)
        assert text in response.json()["detail"], (name, response.text)


async def _chunked(*parts: bytes) -> AsyncIterator[bytes]:
    """A body sent in chunks, without a Content-Length to refuse it by."""
    for part in parts:
        yield part


async def test_health_and_readiness(make_app, client_for) -> None:
    async with client_for(make_app([say("ok")])) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["agents"] == "ok"


async def test_request_id_is_echoed(make_app, client_for) -> None:
    async with client_for(make_app([say("ok")])) as client:
        response = await client.get("/healthz", headers={"x-request-id": "abc123"})
    assert response.headers["x-request-id"] == "abc123"


async def test_cors_is_a_setting(make_app, client_for) -> None:
    app = make_app([say("ok")], cors_origins=["https://chat.example.org"])
    async with client_for(app) as client:
        allowed = await client.options("/chat", headers={
            "Origin": "https://chat.example.org", "Access-Control-Request-Method": "POST"})
        other = await client.options("/chat", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert allowed.headers["access-control-allow-origin"] == "https://chat.example.org"
    assert "access-control-allow-origin" not in other.headers
    async with client_for(make_app([say("ok")])) as client:
        closed = await client.options("/chat", headers={
            "Origin": "https://chat.example.org", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in closed.headers


async def test_not_ready_while_redis_is_down(make_app, client_for, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from server.embedded.redis_server import start_redis

    redis = start_redis(tmp_path / "redis")
    try:
        async with client_for(make_app([say("ok")], redis_url=redis.url)) as client:
            up = await client.get("/readyz")
            redis.stop()
            down = await client.get("/readyz")
            alive = await client.get("/healthz")
    finally:
        redis.stop()
    assert up.status_code == 200 and up.json()["checks"]["redis"] == "ok"
    assert down.status_code == 503 and down.json()["status"] == "not ready"
    assert down.json()["checks"]["redis"].startswith("unreachable")
    assert alive.status_code == 200  # alive, just not ready: no restart, no traffic
