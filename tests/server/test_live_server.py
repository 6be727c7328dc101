"""The app on a real port: OpenAPI, disconnects, the playground's assets, the terminal chat."""

from __future__ import annotations

import io
import re
import time

import httpx
from httpx_sse import connect_sse

from agents.fake import call, say
from server.chat_client import ChatSession, repl


def test_openapi_documents_every_route(make_app, live) -> None:
    with live(make_app([say("ok")])) as url:
        spec = httpx.get(f"{url}/openapi.json").json()
    paths = set(spec["paths"])
    assert {"/chat", "/chat/stream", "/agents", "/tools", "/healthz", "/readyz"} <= paths
    for agent in ("assistant", "weather", "reports", "summarizer", "translator"):
        for endpoint in ("invoke", "batch", "stream", "stream_events"):
            assert f"/agents/{agent}/{endpoint}" in paths
    chat_body = spec["paths"]["/chat"]["post"]["requestBody"]["content"]["application/json"]
    assert chat_body["schema"]["$ref"].endswith("/ChatRequest")
    assert set(spec["components"]["schemas"]["ChatRequest"]["properties"]) == {
        "message", "thread_id", "agent"}


def test_client_disconnect_cancels_the_run(make_app, live, probe) -> None:
    app = make_app([call("wait_long", seconds=60), say("finished")], cycle=False)
    with live(app) as url, httpx.Client(timeout=30) as client:
        with connect_sse(client, "POST", f"{url}/chat/stream",
                         json={"message": "wait please"}) as source:
            for sse in source.iter_sse():
                if sse.event == "tool_start":
                    break
        # Leaving the block closed the connection mid-stream.
        deadline = time.monotonic() + 20
        while not probe.cancelled and time.monotonic() < deadline:
            time.sleep(0.05)
        assert probe.cancelled == ["wait_long"]
        # The server is fine afterwards.
        assert client.get(f"{url}/healthz").status_code == 200
    assert len(app.state.model.calls) == 1  # the model was not asked to go on


def test_playground_page_loads_its_assets(make_app, live) -> None:
    with live(make_app([say("ok")])) as url:
        page = httpx.get(f"{url}/agents/assistant/playground/")
        assert page.status_code == 200
        assets = re.findall(r'(?:src|href)="(/agents/assistant/playground/[^"]+)"', page.text)
        assert any(a.endswith(".js") for a in assets)
        for asset in assets:
            response = httpx.get(f"{url}{asset}")
            assert response.status_code == 200, asset
            assert len(response.content) > 0


def test_terminal_chat_streams_and_keeps_the_thread(make_app, live, redis_url) -> None:
    app = make_app([call("add", a=3, b=4), say("Seven."), say("Still seven."), say("Hi.")],
                   cycle=False, auth_enabled=True, redis_url=redis_url)
    with live(app) as url:
        httpx.post(f"{url}/auth/register", json={"username": "tess",
                                                 "password": "a long enough password"})
        session = ChatSession(base_url=url)
        session.login("tess", "a long enough password")
        out = io.StringIO()
        lines = iter(["3+4?", "/thread", "and again?", "/quit"])
        repl(session, read=lambda _prompt: next(lines), out=out)
        first_thread = session.thread_id
        # The turns reach history through the stream; then /threads and /history show them.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if len(session.history()) >= 5:
                    break
            except httpx.HTTPStatusError:  # 404 until the first turn is stored
                pass
            time.sleep(0.1)
        lines = iter(["/new", "hello", "/threads", f"/open {first_thread}", "/history",
                      "/quit"])
        later = io.StringIO()
        repl(session, read=lambda _prompt: next(lines), out=later)
    text = out.getvalue()
    assert "[tool add" in text and "Seven." in text and "Still seven." in text
    assert first_thread and f"[thread {first_thread}]" in text
    assert "3+4?" in [m.content for m in app.state.model.calls[-2]]
    listing = later.getvalue()
    assert f"{first_thread}  3+4?" in listing  # the thread list, titled by its first message
    assert "user: 3+4?" in listing and "assistant: Still seven." in listing


def test_terminal_chat_asks_before_a_call_that_needs_approval(make_app, live, redis_url,
                                                              probe) -> None:
    app = make_app([call("send_postcard", to="Bob", text="Hi"), say("Sent."),
                    call("send_postcard", to="Bob", text="Hi"), say("Sent to Cy.")],
                   cycle=False, redis_url=redis_url)
    with live(app) as url:
        session = ChatSession(base_url=url)
        out = io.StringIO()
        lines = iter(["post it", "x", "a", "again", "e", '{"to": "Cy", "text": "Yo"}',
                      "/quit"])
        repl(session, read=lambda _prompt: next(lines), out=out)
    text = out.getvalue()
    assert "[waiting for your approval: send_postcard]" in text
    assert 'send_postcard wants to run with {"to": "Bob", "text": "Hi"}' in text
    assert "[choose one of" in text  # "x" is no decision: asked again
    assert "Sent." in text and "Sent to Cy." in text
    assert probe.posted == ["Bob: Hi", "Cy: Yo"]


def test_terminal_chat_asks_again_when_a_decision_is_refused(make_app, live, redis_url,
                                                            probe) -> None:
    app = make_app([call("send_postcard", to="Bob", text="Hi"), say("Sent.")], cycle=False,
                   redis_url=redis_url)
    with live(app) as url:
        session = ChatSession(base_url=url)
        out = io.StringIO()
        lines = iter(["post it", "e", '{"text": "no address"}', "a", "/quit"])
        repl(session, read=lambda _prompt: next(lines), out=out)
    text = out.getvalue()
    assert "HTTP 422" in text  # the edit lacks `to`: refused, and the call still waits
    assert text.count("send_postcard wants to run with") == 2  # so it is asked again
    assert "Sent." in text and probe.posted == ["Bob: Hi"]
