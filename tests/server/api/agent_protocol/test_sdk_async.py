"""LangGraph's own Python client (`langgraph_sdk`, async) against a real Parley: a stream
cut mid-run resumes, runs cancel, edits branch from an earlier checkpoint, `/chat`'s
threads are the protocol's threads, and another user gets 404 on all of it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import NotFoundError

from tests.support.agent_protocol import Server
from tests.support.cutting_proxy import cutting_proxy


def sdk(server: Server, user: str = "ada", url: str | None = None) -> Any:
    return get_client(url=url or server.url, api_key=server.keys[user])


def says(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def texts(values: dict[str, Any]) -> list[str]:
    return [m["content"] for m in values["messages"]]


async def test_a_stream_cut_mid_run_resumes_where_it_stopped(ap_server: Server,
                                                             probe: Any) -> None:
    thread_id = (await sdk(ap_server).threads.create())["thread_id"]
    with cutting_proxy(ap_server.url, cut_after=3) as proxy:
        client = sdk(ap_server, url=proxy.url)
        parts = [p async for p in client.runs.stream(
            thread_id, "assistant", input=says("wait 1"),
            stream_mode=["values", "updates", "messages-tuple"], stream_resumable=True)]
    assert proxy.cuts == 1  # the connection was cut, and the SDK came back
    assert [p.id for p in parts] == [str(i) for i in range(len(parts))]  # none twice, none lost
    assert parts[0].event == "metadata" and parts[-1].event == "end"
    final = [p.data for p in parts if p.event == "values"][-1]
    assert texts(final)[-1] == "Waited."
    assert probe.cancelled == []  # the run went on while nobody listened


@pytest.mark.timeout(400)  # a second server process starts first
async def test_a_resumable_run_is_followed_from_another_replica(
        ap_server: Server, other_replica: str) -> None:
    client = sdk(ap_server)
    thread_id = (await client.threads.create())["thread_id"]
    created: list[Any] = []
    stream = client.runs.stream(thread_id, "assistant", input=says("wait 1"),
                                stream_resumable=True, on_run_created=created.append)
    seen = [await anext(stream), await anext(stream)]
    await stream.aclose()  # the client goes away after two events
    elsewhere = sdk(ap_server, url=other_replica)
    rest = [p async for p in elsewhere.runs.join_stream(
        thread_id, created[0]["run_id"], last_event_id=seen[-1].id)]
    assert [p.id for p in seen + rest] == [str(i) for i in range(len(seen) + len(rest))]
    assert rest[-1].event == "end"
    assert texts([p.data for p in rest if p.event == "values"][-1])[-1] == "Waited."


async def test_a_run_is_cancelled_with_its_tools(ap_server: Server, probe: Any) -> None:
    client = sdk(ap_server)
    thread_id = (await client.threads.create())["thread_id"]
    run = await client.runs.create(thread_id, "assistant", input=says("wait 60"))
    await asyncio.to_thread(probe.started.wait, 30)
    await client.runs.cancel(thread_id, run["run_id"], wait=True)
    assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "interrupted"
    assert probe.cancelled == ["wait_long"]
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_an_edit_and_a_regeneration_branch_from_earlier_checkpoints(
        ap_server: Server) -> None:
    client = sdk(ap_server)
    thread_id = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread_id, "assistant", input=says("I am Ada"))
    await client.runs.wait(thread_id, "assistant", input=says("what now"))
    history = await client.threads.get_history(thread_id, limit=100)
    # As agent-chat-ui edits a message: from the parent of the first state that had it.
    first_seen = [h for h in history if "what now" in texts(h["values"]) if h["values"]][-1]
    edited = await client.runs.wait(thread_id, "assistant", input=says("first?"),
                                    checkpoint=first_seen["parent_checkpoint"])
    assert texts(edited) == ["I am Ada", "You said: I am Ada", "first?",
                             "Your first message was: I am Ada"]
    # As it regenerates an answer: from the parent of the first state that had it.
    history = await client.threads.get_history(thread_id, limit=100)
    answer = edited["messages"][-1]
    had = [h for h in history if h["values"]
           and answer["id"] in [m["id"] for m in h["values"]["messages"]]][-1]
    again = await client.runs.wait(thread_id, "assistant", input=None,
                                   checkpoint=had["parent_checkpoint"])
    assert texts(again) == texts(edited) and again["messages"][-1]["id"] != answer["id"]
    ends = {h["checkpoint"]["checkpoint_id"] for h in await client.threads.get_history(
        thread_id, limit=100) if h["next"] == []}
    assert len(ends) >= 3  # the first answer, the edit's, the regenerated one: all kept


async def test_a_run_paused_at_a_breakpoint_resumes(ap_server: Server) -> None:
    client = sdk(ap_server)
    thread_id = (await client.threads.create())["thread_id"]
    paused = await client.runs.wait(thread_id, "assistant", input=says("add them"),
                                    interrupt_before=["tools"])
    assert texts(paused)[-1] == "Adding."
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["tools"]
    assert (await client.threads.get(thread_id))["status"] == "interrupted"
    parts = [p async for p in client.runs.stream(thread_id, "assistant",
                                                 command={"resume": "go on"})]
    assert parts[-1].event == "end"
    final = [p.data for p in parts if p.event == "values"][-1]
    assert texts(final)[-1] == "The sum is 5."
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_stateless_runs_keep_nothing(ap_server: Server) -> None:
    client = sdk(ap_server)
    answer = await client.runs.wait(None, "assistant", input={"messages": [
        {"role": "user", "content": "I am Ada"}, {"role": "assistant", "content": "Hi."},
        {"role": "user", "content": "first?"}]})
    assert texts(answer)[-1] == "Your first message was: I am Ada"
    parts = [p async for p in client.runs.stream(None, "assistant", input=says("hello"),
                                                 stream_mode="updates")]
    assert parts[0].event == "metadata" and parts[-1].event == "end"
    assert await client.threads.search() == []


async def test_chat_threads_are_protocol_threads(ap_server: Server) -> None:
    with ap_server.client() as http:
        said = http.post("/chat", json={"message": "I am Ada"}).json()
        thread_id = said["thread_id"]
        client = sdk(ap_server)
        found = await client.threads.search(metadata={"graph_id": "assistant"})
        assert [t["thread_id"] for t in found] == [thread_id]
        assert texts(found[0]["values"]) == ["I am Ada", "You said: I am Ada"]
        went_on = await client.runs.wait(thread_id, "assistant", input=says("first?"))
        assert texts(went_on)[-1] == "Your first message was: I am Ada"
        again = http.post("/chat", json={"message": "first?", "thread_id": thread_id})
        assert again.json()["message"]["content"] == "Your first message was: I am Ada"
        await client.threads.delete(thread_id)  # forgets it everywhere, as /chat does
        assert http.delete(f"/chat/threads/{thread_id}").status_code == 404
        with pytest.raises(NotFoundError):
            await client.threads.get(thread_id)


async def test_another_user_gets_404_on_everything(ap_server: Server) -> None:
    ada, bob = sdk(ap_server, "ada"), sdk(ap_server, "bob")
    thread_id = (await ada.threads.create())["thread_id"]
    run = await ada.runs.create(thread_id, "assistant", input=says("hello"))
    await ada.runs.join(thread_id, run["run_id"])
    run_id = run["run_id"]
    attempts = {
        "get": lambda: bob.threads.get(thread_id),
        "state": lambda: bob.threads.get_state(thread_id),
        "history": lambda: bob.threads.get_history(thread_id),
        "update": lambda: bob.threads.update_state(thread_id, {"messages": []}),
        "patch": lambda: bob.threads.update(thread_id, metadata={"x": 1}),
        "runs": lambda: bob.runs.list(thread_id),
        "run": lambda: bob.runs.get(thread_id, run_id),
        "join": lambda: bob.runs.join(thread_id, run_id),
        "cancel": lambda: bob.runs.cancel(thread_id, run_id),
        "new run": lambda: bob.runs.create(thread_id, "assistant", input=says("hi")),
        "delete": lambda: bob.threads.delete(thread_id),
    }
    for name, attempt in attempts.items():
        with pytest.raises(httpx.HTTPStatusError) as caught:  # NotFoundError, or httpx's
            await attempt()
        assert caught.value.response.status_code == 404, name
    with pytest.raises(NotFoundError):
        [p async for p in bob.runs.join_stream(thread_id, run_id)]
    with pytest.raises(NotFoundError):
        [p async for p in bob.runs.stream(thread_id, "assistant", input=says("hi"))]
    assert await bob.threads.search() == []
    assert (await ada.threads.get(thread_id))["thread_id"] == thread_id  # still Ada's


async def test_an_api_key_stops_working_once_revoked(ap_server: Server) -> None:
    client = sdk(ap_server)
    assert await client.assistants.search() != []
    async with httpx.AsyncClient(base_url=ap_server.url, timeout=30,
                                 headers={"x-api-key": ap_server.keys["ada"]}) as http:
        key_id = (await http.get("/auth/api-keys")).json()[0]["id"]
        assert (await http.delete(f"/auth/api-keys/{key_id}")).status_code == 204
        refused = await http.post("/threads/search", json={})
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
