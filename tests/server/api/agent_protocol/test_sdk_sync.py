"""LangGraph's own Python client (`langgraph_sdk`, sync) against a real Parley: what it
sends and parses is what Parley answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

from server.agent_protocol.assistants import assistant_id
from tests.support.agent_protocol import Server


def sdk(server: Server, user: str = "ada") -> Any:
    return get_sync_client(url=server.url, api_key=server.keys[user])


def texts(values: dict[str, Any]) -> list[str]:
    return [m["content"] for m in values["messages"]]


def test_assistants_are_the_agents(ap_server: Server) -> None:
    client = sdk(ap_server)
    found = client.assistants.search(limit=100)
    by_graph = {a["graph_id"]: a for a in found}
    assert {"assistant", "weather", "reports", "summarizer", "translator"} <= set(by_graph)
    assert by_graph["assistant"]["assistant_id"] == assistant_id("assistant")
    assert client.assistants.search(graph_id="weather")[0]["graph_id"] == "weather"
    by_id = client.assistants.get(assistant_id("assistant"))
    assert by_id == client.assistants.get("assistant")
    graph = client.assistants.get_graph("assistant")
    assert {"recall", "agent", "tools", "remember"} <= {n["id"] for n in graph["nodes"]}
    schemas = client.assistants.get_schemas("assistant")
    assert "messages" in schemas["input_schema"]["properties"]
    with pytest.raises(NotFoundError):
        client.assistants.get("no-such-agent")


def test_a_run_streams_in_every_mode_and_keeps_the_thread(ap_server: Server) -> None:
    client = sdk(ap_server)
    thread = client.threads.create(metadata={"topic": "sums"})
    created: list[Any] = []
    parts = list(client.runs.stream(
        thread["thread_id"], "assistant", input={"messages": [
            {"role": "user", "content": "add two and three"}]},
        stream_mode=["values", "updates", "messages-tuple", "custom", "events"],
        on_run_created=created.append))
    names = [p.event for p in parts]
    assert names[0] == "metadata" and names[-1] == "end"
    assert parts[0].data["run_id"] == created[0]["run_id"]
    assert {"values", "updates", "messages", "custom", "events"} <= set(names)
    final = [p.data for p in parts if p.event == "values"][-1]
    assert texts(final)[0] == "add two and three"
    assert texts(final)[-1] == "The sum is 5."
    tool_events = [p.data["event"] for p in parts if p.event == "custom"]
    assert tool_events == ["tool_start", "tool_end"]
    updates = [next(iter(p.data)) for p in parts if p.event == "updates"]
    # The assistant has a tool that may wait for approval: each step's calls are reviewed.
    assert updates[:5] == ["recall", "agent", "review", "tools", "agent"]
    tokens = "".join(p.data[0]["content"] for p in parts if p.event == "messages"
                     and p.data[1]["langgraph_node"] == "agent")
    assert "The sum is 5." in tokens
    kinds = {p.data["event"] for p in parts if p.event == "events"}
    assert {"on_chain_start", "on_chat_model_stream", "on_tool_end"} <= kinds
    run = client.runs.get(thread["thread_id"], created[0]["run_id"])
    assert run["status"] == "success"
    assert [r["run_id"] for r in client.runs.list(thread["thread_id"])] == [run["run_id"]]
    got = client.threads.get(thread["thread_id"])
    assert got["status"] == "idle" and got["metadata"]["topic"] == "sums"
    assert got["metadata"]["graph_id"] == "assistant"
    assert texts(got["values"])[-1] == "The sum is 5."


def test_wait_state_history_and_update(ap_server: Server) -> None:
    client = sdk(ap_server)
    thread_id = client.threads.create()["thread_id"]
    first = client.runs.wait(thread_id, "assistant",
                             input={"messages": [{"role": "user", "content": "I am Ada"}]})
    assert texts(first)[-1] == "You said: I am Ada"
    second = client.runs.wait(thread_id, "assistant", input={"messages": [
        {"role": "user", "content": "first?"}]})
    assert texts(second)[-1] == "Your first message was: I am Ada"
    state = client.threads.get_state(thread_id)
    assert texts(state["values"]) == texts(second) and state["next"] == []
    assert state["checkpoint"]["thread_id"] == thread_id  # the client's id, not the key
    history = client.threads.get_history(thread_id, limit=100)
    assert history[0]["checkpoint"]["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]
    assert all(h["checkpoint"]["thread_id"] == thread_id for h in history)
    steps = [h["metadata"]["step"] for h in history]
    assert steps == sorted(steps, reverse=True)
    older = client.threads.get_history(thread_id, limit=2, before=history[0]["checkpoint"])
    assert [h["checkpoint"] for h in older] == [h["checkpoint"] for h in history[1:3]]
    updated = client.threads.update_state(thread_id, {"messages": [
        {"type": "ai", "content": "An aside."}]}, as_node="agent")
    assert texts(client.threads.get_state(thread_id)["values"])[-1] == "An aside."
    assert updated["checkpoint"]["thread_id"] == thread_id


def test_a_second_run_on_a_busy_thread_follows_the_strategy(ap_server: Server) -> None:
    client = sdk(ap_server)
    thread_id = client.threads.create()["thread_id"]
    busy = client.runs.create(thread_id, "assistant", input={"messages": [
        {"role": "user", "content": "wait 60"}]})
    with pytest.raises(ConflictError):
        client.runs.create(thread_id, "assistant", input={"messages": [
            {"role": "user", "content": "hello"}]}, multitask_strategy="reject")
    queued = client.runs.create(thread_id, "assistant", input={"messages": [
        {"role": "user", "content": "queued"}]}, multitask_strategy="enqueue")
    assert client.runs.get(thread_id, queued["run_id"])["status"] == "pending"
    client.runs.cancel(thread_id, busy["run_id"], wait=True)
    assert client.runs.get(thread_id, busy["run_id"])["status"] == "interrupted"
    done = client.runs.join(thread_id, queued["run_id"])
    assert texts(done)[-1] == "You said: queued"
    assert client.runs.get(thread_id, queued["run_id"])["status"] == "success"


def test_interrupt_and_rollback_replace_a_running_run(ap_server: Server) -> None:
    client = sdk(ap_server)
    thread_id = client.threads.create()["thread_id"]
    client.runs.wait(thread_id, "assistant", input={"messages": [
        {"role": "user", "content": "hello"}]})
    slow = client.runs.create(thread_id, "assistant", input={"messages": [
        {"role": "user", "content": "wait 60"}]})
    rolled = client.runs.wait(thread_id, "assistant", input={"messages": [
        {"role": "user", "content": "instead"}]}, multitask_strategy="rollback")
    # The rolled-back run is gone, and so is everything it wrote.
    assert texts(rolled) == ["hello", "You said: hello", "instead", "You said: instead"]
    with pytest.raises(NotFoundError):
        client.runs.get(thread_id, slow["run_id"])
    slow = client.runs.create(thread_id, "assistant", input={"messages": [
        {"role": "user", "content": "wait 60"}]})
    kept = client.runs.wait(thread_id, "assistant", input={"messages": [
        {"role": "user", "content": "after"}]}, multitask_strategy="interrupt")
    assert client.runs.get(thread_id, slow["run_id"])["status"] == "interrupted"
    assert texts(kept)[-1] == "You said: after"


def refused(status: int, match: str, action: Any) -> None:
    """`action` fails with `status` and a message that says `match`. (The SDK's `wait`
    raises httpx's error, its other calls their own subclasses of it.)"""
    with pytest.raises(httpx.HTTPStatusError) as caught:
        action()
    assert caught.value.response.status_code == status
    assert match in caught.value.response.text


def test_bad_requests_answer_what_to_fix(ap_server: Server) -> None:
    client = sdk(ap_server)
    thread_id = client.threads.create()["thread_id"]
    with pytest.raises(UnprocessableEntityError, match="stream_mode"):
        list(client.runs.stream(thread_id, "assistant", input={"messages": []},
                                stream_mode="everything"))  # type: ignore[arg-type]
    refused(422, "input.messages", lambda: client.runs.wait(
        thread_id, "assistant", input={"messages": [{"nope": 1}]}))
    refused(404, "no assistant", lambda: client.runs.wait(
        thread_id, "nobody", input={"messages": []}))
    refused(404, "not found", lambda: client.runs.wait(
        "no-such-thread", "assistant", input={"messages": []}))
    refused(422, "thread_id", lambda: client.threads.get("bad id!"))
    refused(422, "not a node", lambda: client.runs.wait(
        thread_id, "assistant", input={"messages": []}, interrupt_before=["nowhere"]))
    refused(404, "not kept", lambda: client.runs.wait(
        thread_id, "assistant", input=None, checkpoint_id="1f000000-0000-6000-8000-0000"))
    made = client.runs.wait("fresh-thread", "assistant", input={"messages": [
        {"role": "user", "content": "hi"}]}, if_not_exists="create")
    assert texts(made)[-1] == "You said: hi"
    with pytest.raises(ConflictError):
        client.threads.create(thread_id=thread_id)
    assert client.threads.create(thread_id=thread_id, if_exists="do_nothing")[
        "thread_id"] == thread_id
