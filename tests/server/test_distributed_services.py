"""The same code, distributed: auth and history as services of their own on PostgreSQL,
the gateway verifying tokens with the auth service's JWKS over HTTP."""

from __future__ import annotations

import time
from typing import Any

import httpx
import redis
from langchain_core.messages import AIMessage, BaseMessage

from agents.fake import ScriptedChatModel, call, echo_first, say
from server.app import create_app
from server.embedded.postgres_server import Postgres
from server.platform import Platform, build_platform
from server.settings import Settings
from services.auth.app import create_app as create_auth
from services.auth.settings import AuthSettings
from services.history.app import create_app as create_history
from services.history.settings import HistorySettings
from tests.support.live import serve_in_thread
from tools.registry import ToolSource
from tools.reports import reports_tools

PASSWORD = "a long enough password"


def test_gateway_with_remote_auth_and_history(make_app, postgres_server: Postgres,
                                              redis_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    auth_db = postgres_server.create_database("dist_auth")
    history_db = postgres_server.create_database("dist_history")
    auth = create_auth(AuthSettings(database_url=auth_db, keys_dir=tmp_path / "keys"))
    with serve_in_thread(auth) as auth_url:
        history = create_history(HistorySettings(
            database_url=history_db, redis_url=redis_url, block_ms=200,
            jwks_url=f"{auth_url}/auth/.well-known/jwks.json"))
        gateway = make_app([echo_first], auth_enabled=True, auth_url=auth_url,
                           redis_url=redis_url)
        with serve_in_thread(history) as history_url, serve_in_thread(gateway) as url:
            httpx.post(f"{auth_url}/auth/register",
                       json={"username": "ada", "password": PASSWORD})
            tokens = httpx.post(f"{auth_url}/auth/login",
                                json={"username": "ada", "password": PASSWORD}).json()
            ada = {"Authorization": f"Bearer {tokens['access_token']}"}
            httpx.patch(f"{auth_url}/auth/me", headers=ada,
                        json={"custom_instructions": "Speak like a pirate."})
            turn = httpx.post(f"{url}/chat", headers=ada, timeout=30,
                              json={"message": "ahoy", "thread_id": "voyage"}).json()
            refused = httpx.post(f"{url}/chat", json={"message": "x"},
                                 headers={"Authorization": "Bearer forged.token.here"})
            mounted = httpx.get(f"{url}/auth/.well-known/jwks.json")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                page = httpx.get(f"{history_url}/history", headers=ada,
                                 params={"thread_id": "voyage"})
                if page.status_code == 200 and len(page.json()["messages"]) == 2:
                    break
                time.sleep(0.1)
    assert turn["message"]["content"] == "Your first message was: ahoy"
    assert refused.status_code == 401
    assert mounted.status_code == 404  # the gateway does not serve auth in this shape
    assert [m["content"] for m in reversed(page.json()["messages"])] == [
        "ahoy", "Your first message was: ahoy"]
    system_prompt = gateway.state.model.calls[0][0].content
    assert "Speak like a pirate." in system_prompt  # the profile came over HTTP


def reports_or_echo(messages: list[BaseMessage]) -> AIMessage:
    """Asks for a usage report when told to, shows its result, else quotes the first
    message of the thread (what history the model was given)."""
    last = messages[-1]
    if last.type == "tool":
        return say(f"Report: {last.content}")
    if last.type == "human" and "report" in str(last.content):
        return call("usage_report", period_days=7)
    return echo_first(messages)


def wait_for_messages(history_url: str, headers: dict[str, str], thread: str,
                      count: int) -> list[str]:
    deadline = time.monotonic() + 20
    contents: list[str] = []
    while time.monotonic() < deadline:
        page = httpx.get(f"{history_url}/history", headers=headers, params={"thread_id": thread})
        contents = [m["content"] for m in page.json().get("messages", [])] \
            if page.status_code == 200 else []
        if len(contents) >= count:
            break
        time.sleep(0.1)
    return contents


def reports_gateway(settings: Settings) -> Any:
    """The agent server with the real built-in reports tool and a scripted model."""
    model = ScriptedChatModel(script=[reports_or_echo], cycle=True)

    async def factory(s: Settings, **kwargs: Any) -> Platform:
        return await build_platform(s, models={"fake": model}, tool_sources=[
            ToolSource(name="reports", origin="builtin", target=reports_tools)], **kwargs)

    return create_app(settings, platform_factory=factory)


def test_tools_and_recall_read_a_remote_history_service(postgres_server: Postgres,
                                                        redis_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    history_db = postgres_server.create_database("dist_history_reads")
    auth = create_auth(AuthSettings(database_url=postgres_server.create_database(
        "dist_auth_reads"), keys_dir=tmp_path / "keys"))
    with serve_in_thread(auth) as auth_url:
        history = create_history(HistorySettings(
            database_url=history_db, redis_url=redis_url, block_ms=200,
            jwks_url=f"{auth_url}/auth/.well-known/jwks.json"))
        with serve_in_thread(history) as history_url:
            gateway = reports_gateway(Settings(
                llm="fake", auth_url=auth_url, history_url=history_url, redis_url=redis_url,
                data_dir=tmp_path / "data", memory_enabled=False))
            with serve_in_thread(gateway) as url:
                ada = {}
                for name in ("ada", "bob"):
                    httpx.post(f"{auth_url}/auth/register",
                               json={"username": name, "password": PASSWORD})
                    token = httpx.post(f"{auth_url}/auth/login", json={
                        "username": name, "password": PASSWORD}).json()["access_token"]
                    ada[name] = {"Authorization": f"Bearer {token}"}
                # U+2028 is a line break to str.splitlines(), not to JSON lines.
                httpx.post(f"{url}/chat", headers=ada["ada"], timeout=30,
                           json={"message": "ahoy\u2028matey", "thread_id": "voyage"})
                httpx.post(f"{url}/chat", headers=ada["bob"], timeout=30,
                           json={"message": "bob's own words", "thread_id": "voyage"})
                assert len(wait_for_messages(history_url, ada["ada"], "voyage", 2)) == 2
                # Redis loses the thread: recall rebuilds it from the history service.
                client = redis.Redis.from_url(redis_url)
                for key in client.scan_iter("parley:checkpoint:*"):
                    client.delete(key)
                client.close()
                again = httpx.post(f"{url}/chat", headers=ada["ada"], timeout=30,
                                   json={"message": "and now?", "thread_id": "voyage"}).json()
                assert len(wait_for_messages(history_url, ada["ada"], "voyage", 4)) == 4
                report = httpx.post(f"{url}/chat", headers=ada["ada"], timeout=30,
                                    json={"message": "a report please"}).json()
    assert again["message"]["content"] == "Your first message was: ahoy\u2028matey"
    output = report["tool_calls"][0]["output"]
    assert report["tool_calls"][0]["status"] == "ok", output
    # Ada's four messages in one conversation; Bob's are not hers.
    assert "4 messages in 1 conversations" in output
    assert "bob" not in output.lower()
