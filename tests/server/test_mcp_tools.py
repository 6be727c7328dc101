"""MCP servers as tool sources: a real FastMCP server (tests/support/mcp_server.py) over
stdio and over streamable HTTP on 127.0.0.1, configured through PARLEY_MCP_SERVERS_FILE,
its tools called by scripted turns through `/chat/stream` on a real Parley."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, BaseMessage

from agents.fake import call, say
from tests.server.api.openai.support import login
from tests.server.api.test_chat import sse_events
from tests.support.mcp_server import free_port, http_server, stdio_entry


def scripted(messages: list[BaseMessage]) -> AIMessage:
    """`use TOOL {json args}` calls the tool; after it, reports the result."""
    last = messages[-1]
    if last.type == "tool":
        return say(f"[{last.status}] {last.text}")  # type: ignore[attr-defined]
    asked = last.text
    if asked.startswith("use "):
        name, _, args = asked[4:].partition(" ")
        return call(name, **json.loads(args or "{}"))
    return say("Hello.")


def servers_file(tmp_path: Path, servers: dict[str, Any]) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"servers": servers}))
    return path


def turn(client: httpx.Client, text: str) -> tuple[list[dict[str, Any]], str]:
    """The `tool_end` events and the answer of one streamed turn (which must not fail)."""
    events = sse_events(client.post("/chat/stream", json={"message": text}).text)
    names = [name for name, _id, _data in events]
    assert "error" not in names, events
    assert names[-1] == "done"
    ends = [data for name, _id, data in events if name == "tool_end"]
    answer = next(data["content"] for name, _id, data in events if name == "message")
    return ends, answer


@contextmanager
def parley(make_auth_app: Any, live: Any, mcp_file: Path, **settings: Any
           ) -> Iterator[tuple[Any, str, Callable[[str], httpx.Client]]]:
    settings.setdefault("tool_timeout", 15)
    app = make_auth_app([scripted], rate_limit_per_minute=0, mcp_servers_file=mcp_file,
                        **settings)
    with live(app) as url:
        clients: list[httpx.Client] = []

        def client_of(username: str) -> httpx.Client:
            headers = {"Authorization": f"Bearer {login(url, username)}"}
            client = httpx.Client(base_url=url, headers=headers, timeout=60)
            clients.append(client)
            return client

        try:
            yield app, url, client_of
        finally:
            for client in clients:
                client.close()


def test_a_stdio_servers_tools_are_listed_and_called(make_auth_app: Any, live: Any,
                                                     tmp_path: Path) -> None:
    mcp_file = servers_file(tmp_path, {"files": stdio_entry(require_approval=True)})
    with parley(make_auth_app, live, mcp_file) as (app, _url, client_of):
        ada = client_of("ada")
        tools = {t["name"]: t for t in ada.get("/tools").json()}
        assert tools["echo"]["source"] == "mcp:files"
        assert tools["echo"]["args_schema"]["properties"]["text"]["type"] == "string"
        assert tools["add"]["source"] == "builtin"  # the other source is still there
        assistant = next(a for a in ada.get("/agents").json() if a["name"] == "assistant")
        assert {"echo", "count", "crash"} <= set(assistant["tools"])
        platform = app.state.platform
        echo = next(t.tool for t in platform.all_tools() if t.tool.name == "echo")
        assert echo.metadata["requires_approval"] is True  # the one key tools declare it with

        # The server's entry requires approval: the call waits for ada, then runs.
        paused = ada.post("/chat", json={"message": 'use echo {"text": "hi"}'}).json()
        assert [c["tool"] for c in paused["approval"]["calls"]] == ["echo"]
        assert paused["tool_calls"] == []
        went_on = ada.post(paused["approval"]["decide"], json={"decision": "approve"}).json()
        assert [(e["tool"], e["status"]) for e in went_on["tool_calls"]] == [("echo", "ok")]
        assert went_on["message"]["content"] == "[success] echo: hi"


def test_a_server_dying_mid_call_is_a_tool_error_and_the_next_call_works(
        make_auth_app: Any, live: Any, tmp_path: Path) -> None:
    mcp_file = servers_file(tmp_path, {"files": stdio_entry()})
    with parley(make_auth_app, live, mcp_file) as (_app, _url, client_of):
        ada = client_of("ada")
        ends, answer = turn(ada, "use crash")
        assert [(e["tool"], e["status"]) for e in ends] == [("crash", "error")]
        assert answer.startswith("[error] Error: ")
        assert "files" in answer  # the model is told which server failed
        ends, answer = turn(ada, 'use echo {"text": "again"}')  # a new process
        assert answer == "[success] echo: again"


def test_an_http_server_killed_mid_run_then_restarted(make_auth_app: Any, live: Any,
                                                     tmp_path: Path) -> None:
    port = free_port()
    mcp_file = servers_file(tmp_path, {"remote": {
        "transport": "streamable_http", "url": f"http://127.0.0.1:{port}/mcp"}})
    # The MCP SDK (1.30) does not report a streamed answer cut off by the server's death
    # to the waiting call: the tool timeout ends it.
    with http_server(port) as process, \
            parley(make_auth_app, live, mcp_file, tool_timeout=4) as (_app, _url, client_of):
        ada = client_of("ada")
        assert turn(ada, 'use echo {"text": "one"}')[1] == "[success] echo: one"

        # Killed while a call runs: the turn goes on and the model reads an error.
        events: list[tuple[str, str, dict[str, Any]]] = []
        with ada.stream("POST", "/chat/stream", json={"message": 'use slow {"seconds": 30}'}
                        ) as response:
            buffer = ""
            for chunk in response.iter_text():
                buffer += chunk
                if "event: tool_start" in buffer and process.poll() is None:
                    time.sleep(0.3)
                    process.kill()
            events = sse_events(buffer)
        names = [name for name, _id, _data in events]
        assert "error" not in names and names[-1] == "done", events
        end = next(data for name, _id, data in events if name == "tool_end")
        assert end["status"] == "error" and end["duration_ms"] < 10_000
        answer = next(data["content"] for name, _id, data in events if name == "message")
        assert answer.startswith("[error] Error:")

        with http_server(port):  # the same server back on its port: picked up again
            assert turn(ada, 'use echo {"text": "two"}')[1] == "[success] echo: two"


def test_a_server_down_at_start_is_skipped_then_added_when_it_comes(
        make_auth_app: Any, live: Any, tmp_path: Path) -> None:
    port = free_port()
    mcp_file = servers_file(tmp_path, {"late": {"url": f"http://127.0.0.1:{port}/mcp"}})
    with parley(make_auth_app, live, mcp_file, mcp_retry_seconds=0.3) as (_a, _u, client_of):
        ada = client_of("ada")
        assert "echo" not in {t["name"] for t in ada.get("/tools").json()}
        assert turn(ada, "hello")[1] == "Hello."  # the platform works without it
        with http_server(port):
            deadline = time.monotonic() + 20
            while "echo" not in {t["name"] for t in ada.get("/tools").json()}:
                assert time.monotonic() < deadline, "the returning server was not added"
                time.sleep(0.2)
            assert turn(ada, 'use echo {"text": "late"}')[1] == "[success] echo: late"


def test_stateful_servers_keep_a_session_per_user_closed_at_shutdown(
        make_auth_app: Any, live: Any, tmp_path: Path) -> None:
    port = free_port()
    mcp_file = servers_file(tmp_path, {
        "kept": {"url": f"http://127.0.0.1:{port}/mcp", "stateful": True}})
    with http_server(port), parley(make_auth_app, live, mcp_file) as (app, _u, client_of):
        ada, bob = client_of("ada"), client_of("bob")
        counted = [turn(user, "use count")[1] for user in (ada, ada, bob, ada)]
        assert counted == ["[success] count 1", "[success] count 2", "[success] count 1",
                           "[success] count 3"]
        pool = app.state.platform.mcp.pool
        assert pool.count("kept") == 2  # Ada's and Bob's
    assert pool.count() == 0  # closed at shutdown


def test_a_users_own_credential_goes_to_their_calls_only(make_auth_app: Any, live: Any,
                                                         tmp_path: Path) -> None:
    port = free_port()
    mcp_file = servers_file(tmp_path, {"tickets": {
        "url": f"http://127.0.0.1:{port}/mcp", "headers": {"X-Team": "support"},
        "user_credential": {"header": "Authorization", "prefix": "Bearer "}}})
    with http_server(port), parley(make_auth_app, live, mcp_file) as (_a, _u, client_of):
        ada, bob = client_of("ada"), client_of("bob")
        assert ada.put("/auth/mcp-credentials/tickets",
                       json={"credential": "ada-secret"}).status_code == 200
        listed = ada.get("/auth/mcp-credentials").json()
        assert [c["server"] for c in listed] == ["tickets"] and "ada-secret" not in str(listed)
        assert ada.put("/auth/mcp-credentials/no%20such",
                       json={"credential": "x"}).status_code == 422
        assert ada.put("/auth/mcp-credentials/tickets",
                       json={"credential": "two\nlines"}).status_code == 422
        assert httpx.put(f"{_u}/auth/mcp-credentials/tickets",
                         json={"credential": "x"}).status_code == 401
        # Only the agent servers read a credential back, and only with the service key.
        assert ada.post("/auth/mcp-credentials/tickets/reveal").status_code == 403

        assert turn(ada, "use whoami")[1] == "[success] credential Bearer ada-secret"
        ends, answer = turn(bob, "use whoami")  # Bob has none: never Ada's
        assert ends[0]["status"] == "error"
        assert "needs your own credential" in answer and "ada-secret" not in answer
        assert ada.delete("/auth/mcp-credentials/tickets").status_code == 204
        assert ada.delete("/auth/mcp-credentials/tickets").status_code == 404
        assert "needs your own credential" in turn(ada, "use whoami")[1]


def test_a_bad_servers_file_stops_the_start_with_a_clear_message(tmp_path: Path) -> None:
    from tools.mcp_servers import McpConfigError, load_servers

    bad = servers_file(tmp_path, {"x": {"transport": "stdio"}})
    with pytest.raises(McpConfigError, match=r"server 'x'.*command"):
        load_servers(bad)
    bad.write_text("{not json")
    with pytest.raises(McpConfigError, match="not JSON"):
        load_servers(bad)
    bad.write_text(json.dumps({"mcpServers": {"a b": {"command": "x"}}}))
    with pytest.raises(McpConfigError, match="server name"):
        load_servers(bad)
    ok = load_servers(servers_file(tmp_path, {"a": {"command": "x"},
                                              "b": {"url": "http://127.0.0.1:1/mcp"}}))
    assert ok["a"].transport == "stdio" and ok["b"].transport == "streamable_http"



def test_parley_tools_lists_mcp_tools_and_unavailable_servers(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from server.cli import app as cli

    mcp_file = servers_file(tmp_path, {
        "files": stdio_entry(), "gone": {"url": f"http://127.0.0.1:{free_port()}/mcp"}})
    result = CliRunner().invoke(cli, ["tools"], env={
        "PARLEY_MCP_SERVERS_FILE": str(mcp_file), "PARLEY_DATA_DIR": str(tmp_path / "data"),
        "PARLEY_MCP_CONNECT_TIMEOUT": "10"})
    assert result.exit_code == 0, result.output
    assert "echo  [mcp:files]" in result.output
    assert '"text": {' in result.output  # the MCP tool's argument schema
    assert "get_weather  [builtin]" in result.output
    assert "MCP server 'gone' is unavailable" in result.output


def test_a_kept_session_follows_a_changed_credential(make_auth_app: Any, live: Any,
                                                    tmp_path: Path) -> None:
    port = free_port()
    mcp_file = servers_file(tmp_path, {"tickets": {
        "url": f"http://127.0.0.1:{port}/mcp", "stateful": True,
        "user_credential": {"header": "Authorization", "prefix": "Token "}}})
    with http_server(port), parley(make_auth_app, live, mcp_file) as (app, _u, client_of):
        ada = client_of("ada")
        ada.put("/auth/mcp-credentials/tickets", json={"credential": "one"})
        assert turn(ada, "use whoami")[1] == "[success] credential Token one"
        assert turn(ada, "use count")[1] == "[success] count 1"
        assert turn(ada, "use count")[1] == "[success] count 2"  # the same session
        ada.put("/auth/mcp-credentials/tickets", json={"credential": "two"})
        assert turn(ada, "use whoami")[1] == "[success] credential Token two"
        assert turn(ada, "use count")[1] == "[success] count 1"  # a new one, for the new key
        assert app.state.platform.mcp.pool.count("tickets") == 1


def test_a_misbehaving_server_is_skipped_and_agents_name_mcp_tools(
        make_auth_app: Any, live: Any, tmp_path: Path) -> None:
    import sys

    mcp_file = servers_file(tmp_path, {
        "files": stdio_entry(),
        "babbler": {"command": sys.executable,  # speaks no MCP and never answers
                    "args": ["-c", "import sys, time; print('hello?'); time.sleep(60)"]}})
    started = time.monotonic()
    with parley(make_auth_app, live, mcp_file, mcp_connect_timeout=10,
                agent_tools={"weather": ["add", "echo"]}) as (app, _u, client_of):
        assert time.monotonic() - started < 30
        ada = client_of("ada")
        assert set(app.state.platform.mcp.missing) == {"babbler"}
        agents = {a["name"]: a["tools"] for a in ada.get("/agents").json()}
        assert agents["weather"] == ["add", "echo"]
        assert turn(ada, 'use echo {"text": "still here"}')[1] == "[success] echo: still here"


def test_a_kept_session_to_a_restarted_server_is_opened_anew(make_auth_app: Any, live: Any,
                                                            tmp_path: Path) -> None:
    port = free_port()
    mcp_file = servers_file(tmp_path, {
        "kept": {"url": f"http://127.0.0.1:{port}/mcp", "stateful": True}})
    with http_server(port) as first, \
            parley(make_auth_app, live, mcp_file, tool_timeout=4) as (app, _u, client_of):
        ada = client_of("ada")
        assert turn(ada, "use count")[1] == "[success] count 1"
        first.kill()
        first.wait(10)
        ends, answer = turn(ada, "use count")  # the server is gone: an error, not a failure
        assert ends[0]["status"] == "error" and answer.startswith("[error] Error:")
        with http_server(port):  # back, with no memory of the old session
            assert turn(ada, "use count")[1] == "[success] count 1"
            assert turn(ada, "use count")[1] == "[success] count 2"
        assert app.state.platform.mcp.pool.count("kept") == 1
