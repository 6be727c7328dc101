"""Parley as an MCP server: the real MCP Python client against `/mcp` on a real Parley,
with a user's access token or API key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from langchain_core.messages import AIMessage, BaseMessage
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client

from agents.fake import say
from tests.server.api.openai.support import login


def counting(messages: list[BaseMessage]) -> AIMessage:
    """Says how many user messages the thread holds: shows whose thread a turn ran on."""
    said = [m.text for m in messages if m.type == "human"]
    return say(f"{len(said)} messages, last: {said[-1]}")


@asynccontextmanager
async def mcp_session(url: str, headers: dict[str, str]) -> AsyncIterator[ClientSession]:
    async with streamablehttp_client(f"{url}/mcp", headers=headers) as (read, write, _), \
            ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def ask(session: ClientSession, args: dict[str, Any], agent: str = "assistant"
              ) -> dict[str, Any]:
    result = await session.call_tool(f"ask_{agent}", args)
    assert not result.isError, result.content
    assert result.structuredContent is not None
    return result.structuredContent


async def test_a_user_lists_the_agents_and_asks_one(make_auth_app: Any, live: Any) -> None:
    app = make_auth_app([counting], rate_limit_per_minute=0)
    with live(app) as url:
        ada = {"Authorization": f"Bearer {login(url, 'ada')}"}
        bob = {"Authorization": f"Bearer {login(url, 'bob')}"}
        async with mcp_session(url, ada) as session:
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert {"ask_assistant", "ask_weather", "ask_translator",
                    "search_memories"} <= names
            first = await ask(session, {"message": "hello"})
            assert first["answer"] == "1 messages, last: hello"
            assert first["agent"] == "assistant"
            again = await ask(session, {"message": "and again",
                                        "thread_id": first["thread_id"]})
            assert again["answer"] == "2 messages, last: and again"
            assert again["thread_id"] == first["thread_id"]

            empty = await session.call_tool("ask_assistant", {"message": "  "})
            assert empty.isError and "message is empty" in str(empty.content)
            bad = await session.call_tool("ask_assistant", {"message": "x",
                                                            "thread_id": "no spaces"})
            assert bad.isError and "thread_id must be" in str(bad.content)

        # Bob naming Ada's thread gets a new thread of his own, not hers.
        async with mcp_session(url, bob) as session:
            theirs = await ask(session, {"message": "what did she say?",
                                         "thread_id": first["thread_id"]})
            assert theirs["answer"] == "1 messages, last: what did she say?"
        # Ada's thread is still hers alone.
        async with mcp_session(url, ada) as session:
            mine = await ask(session, {"message": "third", "thread_id": first["thread_id"]})
            assert mine["answer"] == "3 messages, last: third"


async def test_without_a_token_it_is_refused(make_auth_app: Any, live: Any) -> None:
    app = make_auth_app([counting])
    with live(app) as url:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        headers = {"accept": "application/json, text/event-stream"}
        async with httpx.AsyncClient(base_url=url) as client:
            response = await client.post("/mcp", json=body, headers=headers)
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
            assert "missing access token" in response.json()["detail"]
            bad = await client.post("/mcp", json=body,
                                    headers={**headers, "Authorization": "Bearer nonsense"})
            assert bad.status_code == 401


async def test_a_personal_api_key_works_too(make_auth_app: Any, live: Any) -> None:
    app = make_auth_app([counting], rate_limit_per_minute=0)
    with live(app) as url:
        token = login(url, "ada")
        async with httpx.AsyncClient(base_url=url) as client:
            key = (await client.post("/auth/api-keys", json={"name": "ide"},
                                     headers={"Authorization": f"Bearer {token}"})
                   ).json()["key"]
        async with mcp_session(url, {"x-api-key": key}) as session:
            assert (await ask(session, {"message": "hi"}))["answer"] == "1 messages, last: hi"


async def test_memories_are_searched_as_the_caller(make_auth_app: Any, live: Any) -> None:
    app = make_auth_app([counting], memory_enabled=True, rate_limit_per_minute=0)
    with live(app) as url:
        ada = {"Authorization": f"Bearer {login(url, 'ada')}"}
        bob = {"Authorization": f"Bearer {login(url, 'bob')}"}
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            added = await client.post("/memories", headers=ada,
                                      json=[{"text": "Ada's cat is called Pixel."}])
        assert added.status_code == 201, added.text
        async with mcp_session(url, ada) as session:
            found = await session.call_tool("search_memories", {"query": "cat name"})
            assert not found.isError, found.content
            assert "Pixel" in str(found.structuredContent)
            empty = await session.call_tool("search_memories", {"query": " "})
            assert empty.isError
        async with mcp_session(url, bob) as session:
            theirs = await session.call_tool("search_memories", {"query": "cat name"})
            assert "Pixel" not in str(theirs.structuredContent)


async def test_mcp_serving_can_be_turned_off(make_auth_app: Any, live: Any) -> None:
    app = make_auth_app([counting], mcp_serve=False)
    with live(app) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.post("/mcp", json={})).status_code == 404


async def test_an_app_started_again_serves_mcp_again(make_auth_app: Any, live: Any) -> None:
    app = make_auth_app([counting], rate_limit_per_minute=0)
    for _ in range(2):  # the SDK's session manager runs once: each start makes its own
        with live(app) as url:
            ada = {"Authorization": f"Bearer {login(url, 'ada')}"}
            async with mcp_session(url, ada) as session:
                assert (await ask(session, {"message": "hi"}))["answer"].endswith("hi")


def test_serving_mcp_leaves_the_root_logger_as_it_was(make_auth_app: Any, live: Any,
                                                      monkeypatch: Any) -> None:
    """The MCP SDK's server configures logging when built (`basicConfig`, a rich handler
    at INFO) in a process whose root logger has no handler: Parley's logging is its own."""
    import logging

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # as in a process nobody configured
    monkeypatch.setattr(root, "level", logging.WARNING)
    app = make_auth_app([counting], rate_limit_per_minute=0)
    with live(app) as url:
        assert httpx.get(f"{url}/readyz").status_code == 200
        assert (root.handlers, root.level) == ([], logging.WARNING)
