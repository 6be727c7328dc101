"""The gateway with auth and history mounted: tokens on every agent route, two users kept
apart everywhere, profiles followed, rate limits, the login page, turns reaching history."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from agents.fake import echo_first, say

PASSWORD = "a long enough password"


async def login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    await client.post("/auth/register", json={"username": username, "password": PASSWORD})
    response = await client.post("/auth/login", json={"username": username,
                                                      "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def first_human_texts(calls: list[Any]) -> list[str]:
    return [m.content for m in calls if m.type == "human"]


def conversation(text: str) -> dict[str, Any]:
    return {"messages": [{"type": "human", "content": text}]}


async def test_every_agent_route_needs_a_token(make_app, client_for) -> None:
    async with client_for(make_app([say("hi")], auth_enabled=True)) as client:
        calls = {
            "chat": await client.post("/chat", json={"message": "hi"}),
            "stream": await client.post("/chat/stream", json={"message": "hi"}),
            "agents": await client.get("/agents"),
            "tools": await client.get("/tools"),
            "invoke": await client.post("/agents/assistant/invoke",
                                        json={"input": conversation("hi")}),
            "batch": await client.post("/agents/assistant/batch",
                                       json={"inputs": [conversation("hi")]}),
            "lc_stream": await client.post("/agents/assistant/stream",
                                           json={"input": conversation("hi")}),
            "events": await client.post("/agents/assistant/stream_events",
                                        json={"input": conversation("hi")}),
            "history": await client.get("/history/threads"),
            "bad token": await client.get("/agents",
                                          headers={"Authorization": "Bearer x.y.z"}),
        }
        page = await client.get("/agents/assistant/playground/",
                                headers={"accept": "text/html"})
        health = await client.get("/healthz")
    for name, response in calls.items():
        assert response.status_code == 401, (name, response.text)
    assert "access token" in calls["chat"].json()["detail"]
    # A browser is sent to the login page and comes back afterwards.
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/agents/assistant/playground/"
    assert health.status_code == 200


async def test_two_users_never_see_each_other(make_app, client_for, redis_url) -> None:
    app = make_app([echo_first], auth_enabled=True, redis_url=redis_url)
    async with client_for(app) as client:
        ada, bob = await login(client, "ada"), await login(client, "bob")
        first = await client.post("/chat", headers=ada,
                                  json={"message": "my secret is 42", "thread_id": "shared"})
        assert first.json()["message"]["content"] == "Your first message was: my secret is 42"
        # Bob names the same thread id, and even sends a user_id: he gets his own thread.
        bobs = await client.post("/chat", headers=bob, json={
            "message": "what is the secret?", "thread_id": "shared", "user_id": "ada"})
        assert bobs.json()["message"]["content"] == \
            "Your first message was: what is the secret?"
        # LangServe, batch included, with a forged configurable: still Bob's own run.
        batch = await client.post("/agents/assistant/batch", headers=bob, json={
            "inputs": [conversation("one"), conversation("two")],
            "config": {"configurable": {"user_id": "ada", "thread_id": "ada:shared"}}})
        assert [o["content"] for o in batch.json()["output"]] == [
            "Your first message was: one", "Your first message was: two"]
        # The playground's own endpoint (stream_log) is Bob's run too.
        log = await client.post("/agents/assistant/stream_log", headers=bob, json={
            "input": conversation("playground?"),
            "config": {"configurable": {"user_id": "ada"}}})
        assert log.status_code == 200 and "my secret is 42" not in log.text
        assert "Your first message was: playground?" in log.text
        for call in app.state.model.calls:
            if "what is the secret?" in first_human_texts(call):
                assert "my secret is 42" not in first_human_texts(call)
        # History: each sees their own thread only.
        for _ in range(100):
            ada_threads = (await client.get("/history/threads", headers=ada)).json()
            bob_threads = (await client.get("/history/threads", headers=bob)).json()
            if ada_threads and bob_threads:
                break
            await asyncio.sleep(0.05)
        ada_msgs = (await client.get("/history", headers=ada,
                                     params={"thread_id": "shared"})).json()["messages"]
        bob_msgs = (await client.get("/history", headers=bob,
                                     params={"thread_id": "shared"})).json()["messages"]
        export = (await client.get("/history/export", headers=bob)).text
    assert [t["id"] for t in ada_threads] == ["shared"]
    assert [t["id"] for t in bob_threads] == ["shared"]  # LangServe runs are not stored
    assert "my secret is 42" in {m["content"] for m in ada_msgs}
    assert "my secret is 42" not in {m["content"] for m in bob_msgs}
    assert "my secret is 42" not in export


async def test_custom_instructions_reach_the_agent(make_app, client_for) -> None:
    app = make_app([say("Bonjour !")], auth_enabled=True)
    async with client_for(app) as client:
        ada = await login(client, "ada")
        await client.patch("/auth/me", headers=ada, json={
            "display_name": "Ada", "preferred_language": "French",
            "custom_instructions": "Always end with a haiku."})
        await client.post("/chat", headers=ada, json={"message": "hello"})
        await client.post("/agents/translator/invoke", headers=ada,
                          json={"input": conversation("hello")})
    for call in app.state.model.calls:
        system = call[0].content
        assert "Always end with a haiku." in system
        assert "French" in system and "Ada" in system


async def test_chat_is_rate_limited_per_user(make_app, client_for, redis_url) -> None:
    app = make_app([say("ok")], auth_enabled=True, redis_url=redis_url,
                   rate_limit_per_minute=1, rate_limit_burst=2)
    async with client_for(app) as client:
        ada, bob = await login(client, "ada"), await login(client, "bob")
        statuses = [(await client.post("/chat", headers=ada, json={"message": "x"})).status_code
                    for _ in range(3)]
        limited = await client.post("/agents/assistant/invoke", headers=ada,
                                    json={"input": conversation("x")})
        other = await client.post("/chat", headers=bob, json={"message": "x"})
        schema = await client.get("/agents/assistant/input_schema", headers=ada)
    assert statuses == [200, 200, 429]
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "rate limit" in limited.json()["detail"]
    assert other.status_code == 200  # buckets are per user
    assert schema.status_code == 200  # reading schemas costs nothing


async def batch(client: httpx.AsyncClient, headers: dict[str, str],
                *texts: str) -> httpx.Response:
    return await client.post("/agents/assistant/batch", headers=headers,
                             json={"inputs": [conversation(t) for t in texts]})


async def test_a_batch_costs_a_turn_per_input(make_app, client_for, redis_url) -> None:
    app = make_app([say("ok")], auth_enabled=True, redis_url=redis_url,
                   rate_limit_per_minute=1, rate_limit_burst=3)
    async with client_for(app) as client:
        ada = await login(client, "ada")
        too_big = await batch(client, ada, "q0", "q1", "q2", "q3")
        two = await batch(client, ada, "a", "b")
        another_two = await batch(client, ada, "c", "d")
        one = await client.post("/chat", headers=ada, json={"message": "e"})
        more = await client.post("/chat", headers=ada, json={"message": "f"})
    assert too_big.status_code == 429 and "send at most 3" in too_big.json()["detail"]
    assert two.status_code == 200 and len(two.json()["output"]) == 2
    # Two of the three turns are spent: a second batch of two must wait, one turn may go.
    assert another_two.status_code == 429 and "Retry-After" in another_two.headers
    assert one.status_code == 200 and more.status_code == 429


async def test_with_the_limit_off_a_batch_of_any_size_runs(make_app, client_for,
                                                            redis_url) -> None:
    app = make_app([say("ok")], auth_enabled=True, redis_url=redis_url,
                   rate_limit_per_minute=0, rate_limit_burst=3)
    async with client_for(app) as client:
        big = await batch(client, await login(client, "ada"), "q0", "q1", "q2", "q3", "q4")
    assert big.status_code == 200 and len(big.json()["output"]) == 5


async def test_login_page_sets_an_httponly_cookie(make_app, client_for) -> None:
    async with client_for(make_app([say("ok")], auth_enabled=True)) as client:
        page = await client.get("/login", params={"next": "/agents/weather/playground/"})
        assert page.status_code == 200 and 'name="password"' in page.text
        created = await client.post("/login", data={
            "username": "carol", "password": PASSWORD, "action": "register",
            "next": "/agents/weather/playground/"})
        assert created.status_code == 303
        assert created.headers["location"] == "/agents/weather/playground/"
        cookie = created.headers["set-cookie"]
        assert "parley_access=" in cookie and "httponly" in cookie.lower()
        assert "samesite=lax" in cookie.lower()
        playground = await client.get("/agents/weather/playground/")
        assert playground.status_code == 200
        agents = await client.get("/agents")
        assert agents.status_code == 200
        client.cookies.clear()
        wrong = await client.post("/login", data={"username": "carol", "password": "nope",
                                                  "next": "https://evil.example/"})
        assert wrong.status_code == 401 and "wrong username or password" in wrong.text
        weak = await client.post("/login", data={"username": "dave", "password": "short",
                                                 "action": "register"})
        assert weak.status_code == 422 and "at least 10 characters" in weak.text
        evil = await client.post("/login", data={"username": "carol", "password": PASSWORD,
                                                 "next": "//evil.example/"})
        assert evil.headers["location"] == "/"  # not elsewhere: the chat page


@pytest.mark.parametrize("agent", ["assistant", "weather"])
async def test_openapi_has_the_oauth2_login(make_app, client_for, agent: str) -> None:
    async with client_for(make_app([say("ok")], auth_enabled=True)) as client:
        spec = (await client.get("/openapi.json")).json()
    assert "/auth/login" in spec["paths"] and "/history/threads" in spec["paths"]
    assert f"/agents/{agent}/invoke" in spec["paths"]
