"""The plain-Redis checkpointer on a real Redis: threads continue, expire and come back
after a restart of the saver; interrupted turns resume; pending writes round-trip."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.checkpoint.base import empty_checkpoint
from redis.asyncio import Redis

from agents.fake import ScriptedChatModel, call, say
from graphs.builder import build_graph
from graphs.deps import GraphDeps
from memory.redis_checkpointer import RedisStringSaver

sent: list[str] = []


@tool
def send_email(to: str) -> str:
    """Send an email (needs the user's approval)."""
    sent.append(to)
    return f"sent to {to}"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def metadata(**extra: Any) -> Any:
    return {"source": "input", "step": -1, **extra}  # callers may add their own keys


def config_for(thread: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread, "user_id": "u1"}}


async def test_a_thread_continues_across_turns_and_savers(redis: Redis) -> None:
    model = ScriptedChatModel(script=[say("Hi Ada."), say("You are Ada.")])
    builder = build_graph(GraphDeps(model=model))
    graph = builder.compile(checkpointer=RedisStringSaver(redis, ttl_seconds=600))
    await graph.ainvoke({"messages": [HumanMessage("I am Ada")]}, config_for("u1:t"),
                        durability="exit")
    # Another saver on the same Redis, as another replica or a restarted server has.
    again = builder.compile(checkpointer=RedisStringSaver(redis, ttl_seconds=600))
    result = await again.ainvoke({"messages": [HumanMessage("who am I?")]},
                                 config_for("u1:t"), durability="exit")
    assert [m.content for m in result["messages"]] == [
        "I am Ada", "Hi Ada.", "who am I?", "You are Ada."]
    assert [m.content for m in model.calls[-1][1:]] == ["I am Ada", "Hi Ada.", "who am I?"]


async def test_threads_expire_and_reading_keeps_them_alive(redis: Redis) -> None:
    saver = RedisStringSaver(redis, ttl_seconds=600)
    graph = build_graph(GraphDeps(model=ScriptedChatModel(script=[say("ok")], cycle=True))
                        ).compile(checkpointer=saver)
    await graph.ainvoke({"messages": [HumanMessage("hi")]}, config_for("u1:ttl"))
    key = saver._key("u1:ttl", "")
    assert 590 < await redis.ttl(key) <= 600
    await redis.expire(key, 30)
    assert await saver.aget_tuple(config_for("u1:ttl")) is not None
    assert await redis.ttl(key) > 590  # the read refreshed it
    await redis.delete(key)  # what expiry does
    assert await saver.aget_tuple(config_for("u1:ttl")) is None


async def test_an_interrupted_turn_resumes_from_a_new_saver(redis: Redis) -> None:
    model = ScriptedChatModel(script=[call("send_email", to="ada@example.org"),
                                      say("Done, the email is sent.")])
    builder = build_graph(GraphDeps(model=model, tools=[send_email]))
    config = config_for("u1:approval")
    graph = builder.compile(checkpointer=RedisStringSaver(redis), interrupt_before=["tools"])
    await graph.ainvoke({"messages": [HumanMessage("email Ada")]}, config)
    paused = await graph.aget_state(config)
    assert paused.next == ("tools",) and sent == []
    graph = builder.compile(checkpointer=RedisStringSaver(redis), interrupt_before=["tools"])
    result = await graph.ainvoke(None, config)
    assert sent == ["ada@example.org"]
    assert isinstance(result["messages"][-2], ToolMessage)
    assert result["messages"][-1].content == "Done, the email is sent."


async def test_pending_writes_round_trip_for_the_latest_checkpoint_only(redis: Redis) -> None:
    saver = RedisStringSaver(redis, ttl_seconds=600)
    base: RunnableConfig = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    first = empty_checkpoint()
    saved = await saver.aput(base, first, {"source": "input", "step": -1}, {})
    await saver.aput_writes(saved, [("messages", "b1"), ("x", 2)], task_id="b")
    await saver.aput_writes(saved, [("messages", "c1")], task_id="0", task_path="~__pregel_pull")
    await saver.aput_writes(saved, [("messages", "a1")], task_id="a")
    await saver.aput_writes(saved, [("messages", "changed")], task_id="a")  # kept as first
    await saver.aput_writes(saved, [("__error__", "boom")], task_id="a")
    await saver.aput_writes(saved, [("__error__", "boom again")], task_id="a")  # replaced
    got = await saver.aget_tuple(base)
    assert got is not None and got.checkpoint["id"] == first["id"]
    # Ordered as the step applied them: by task path, then task, then position.
    assert got.pending_writes == [("a", "__error__", "boom again"), ("a", "messages", "a1"),
                                  ("b", "messages", "b1"), ("b", "x", 2),
                                  ("0", "messages", "c1")]
    assert got.metadata["step"] == -1 and got.parent_config is None
    second = empty_checkpoint()
    await saver.aput(saved, second, {"source": "loop", "step": 0}, {})
    third = empty_checkpoint()
    await saver.aput({"configurable": {**base["configurable"], "checkpoint_id": second["id"]}},
                     third, {"source": "loop", "step": 1}, {})
    latest = await saver.aget_tuple(base)
    assert latest is not None and latest.pending_writes == []
    assert latest.parent_config == {"configurable": {
        "thread_id": "t", "checkpoint_ns": "", "checkpoint_id": second["id"]}}
    assert await redis.hlen(f"{saver._key('t', '')}:writes") == 0  # the first's are gone
    stale: Any = {"configurable": {**base["configurable"], "checkpoint_id": first["id"]}}
    assert await saver.aget_tuple(stale) is None  # only the latest is kept


async def test_list_and_delete_threads_whose_ids_hold_separators(redis: Redis) -> None:
    saver = RedisStringSaver(redis)
    for thread in ("u1:a*b", "u1:a", "u2:c"):
        await saver.aput({"configurable": {"thread_id": thread, "checkpoint_ns": ""}},
                         empty_checkpoint(), metadata(owner=thread), {})
    listed = sorted([t.config["configurable"]["thread_id"] async for t in saver.alist(None)])
    assert listed == ["u1:a", "u1:a*b", "u2:c"]
    only = [t async for t in saver.alist(None, filter={"owner": "u2:c"})]
    assert [t.config["configurable"]["thread_id"] for t in only] == ["u2:c"]
    await saver.adelete_thread("u1:a*b")  # a glob character: deletes that thread only
    left = sorted([t.config["configurable"]["thread_id"] async for t in saver.alist(None)])
    assert left == ["u1:a", "u2:c"]
    # 'u1:a' is a prefix of 'u1:a:2' up to a ':': deleting it leaves the other, and takes
    # every namespace (and pending writes) of its own.
    await saver.aput({"configurable": {"thread_id": "u1:a:2", "checkpoint_ns": ""}},
                     empty_checkpoint(), metadata(owner="u1:a:2"), {})
    sub = await saver.aput({"configurable": {"thread_id": "u1:a", "checkpoint_ns": "tools"}},
                           empty_checkpoint(), metadata(owner="u1:a"), {})
    await saver.aput_writes(sub, [("messages", "x")], "task-1")
    await saver.adelete_thread("u1:a")
    left = sorted([t.config["configurable"]["thread_id"] async for t in saver.alist(None)])
    assert left == ["u1:a:2", "u2:c"]
    assert [k async for k in redis.scan_iter("*u1:a:tools*")] == []


@pytest.mark.parametrize("durability", ["exit", "async"])
async def test_a_node_that_asks_resumes_with_the_answer(redis: Redis, durability: Any) -> None:
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Command, interrupt

    class State(TypedDict, total=False):
        done: list[str]
        answer: str

    def prepare(state: State) -> State:
        return {"done": [*state.get("done", []), "prepared"]}

    def ask(state: State) -> State:
        return {"answer": interrupt("send it?"), "done": [*state["done"], "asked"]}

    builder = StateGraph(State)
    builder.add_node("prepare", prepare)
    builder.add_node("ask", ask)
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "ask")
    builder.add_edge("ask", END)
    config = config_for(f"u1:ask-{durability}")
    first = await builder.compile(checkpointer=RedisStringSaver(redis)).ainvoke(
        {"done": []}, config, durability=durability)
    assert first["__interrupt__"][0].value == "send it?"
    resumed = await builder.compile(checkpointer=RedisStringSaver(redis)).ainvoke(
        Command(resume="yes"), config, durability=durability)
    assert resumed == {"done": ["prepared", "asked"], "answer": "yes"}


async def test_keeping_several_checkpoints_lists_reads_and_trims_them(redis: Redis) -> None:
    saver = RedisStringSaver(redis, ttl_seconds=600, keep=3)
    base: RunnableConfig = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    config, ids = base, []
    for step in range(5):
        checkpoint = empty_checkpoint()
        ids.append(checkpoint["id"])
        saved = await saver.aput(config, checkpoint, {"source": "loop", "step": step}, {})
        await saver.aput_writes(saved, [("messages", f"w{step}")], task_id=f"t{step}")
        config = saved
    listed = [t async for t in saver.alist(base)]
    assert [t.checkpoint["id"] for t in listed] == ids[:1:-1]  # the three newest, newest first
    assert [t.metadata["step"] for t in listed] == [4, 3, 2]
    assert [t.pending_writes for t in listed] == [[("t4", "messages", "w4")],
                                                  [("t3", "messages", "w3")],
                                                  [("t2", "messages", "w2")]]
    assert listed[1].parent_config == {"configurable": {
        "thread_id": "t", "checkpoint_ns": "", "checkpoint_id": ids[2]}}
    older: Any = {"configurable": {**base["configurable"], "checkpoint_id": ids[2]}}
    got = await saver.aget_tuple(older)
    assert got is not None and got.checkpoint["id"] == ids[2]
    gone: Any = {"configurable": {**base["configurable"], "checkpoint_id": ids[1]}}
    assert await saver.aget_tuple(gone) is None  # past `keep`
    before = [t.checkpoint["id"] async for t in saver.alist(base, before=listed[0].config,
                                                              limit=1)]
    assert before == [ids[3]]
    key = saver._key("t", "")
    assert await redis.hlen(f"{key}:history") == 2  # the latest is not stored twice
    assert sorted(await redis.hkeys(f"{key}:writes")) == sorted(
        f"{ids[i]}|t{i}|0".encode() for i in (2, 3, 4))  # dropped checkpoints' writes went
    for side in ("", ":history", ":order", ":writes"):
        assert 590 < await redis.ttl(f"{key}{side}") <= 600


async def test_rewinding_makes_an_older_checkpoint_the_latest(redis: Redis) -> None:
    saver = RedisStringSaver(redis, keep=5)
    base: RunnableConfig = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    config, ids = base, []
    for step in range(3):
        checkpoint = empty_checkpoint()
        ids.append(checkpoint["id"])
        config = await saver.aput(config, checkpoint, {"source": "loop", "step": step}, {})
        await saver.aput_writes(config, [("messages", f"w{step}")], task_id=f"t{step}")
    first: Any = {"configurable": {**base["configurable"], "checkpoint_id": ids[0]}}
    assert await saver.arewind(first)
    latest = await saver.aget_tuple(base)
    assert latest is not None and latest.checkpoint["id"] == ids[0]
    assert latest.pending_writes == [("t0", "messages", "w0")]
    assert [t.checkpoint["id"] async for t in saver.alist(base)] == [ids[0]]
    unknown: Any = {"configurable": {**base["configurable"], "checkpoint_id": "nope"}}
    assert not await saver.arewind(unknown)
    # A new checkpoint after the rewind follows the one rewound to.
    after = empty_checkpoint()
    await saver.aput(first, after, {"source": "loop", "step": 1}, {})
    assert [t.checkpoint["id"] async for t in saver.alist(base)] == [after["id"], ids[0]]
    await saver.adelete_thread("t")
    assert [k async for k in redis.scan_iter("*")] == []


async def test_a_graph_branches_from_a_kept_checkpoint(redis: Redis) -> None:
    model = ScriptedChatModel(script=[say("Hi Ada."), say("Hi Bob.")])
    graph = build_graph(GraphDeps(model=model)).compile(
        checkpointer=RedisStringSaver(redis, keep=20))
    config = config_for("u1:branch")
    await graph.ainvoke({"messages": [HumanMessage("I am Ada", id="h1")]}, config)
    states = [s async for s in graph.aget_state_history(config)]
    start = next(s for s in states if s.next == ("__start__",))  # before the first message
    await graph.ainvoke({"messages": [HumanMessage("I am Bob", id="h2")]}, start.config)
    now = await graph.aget_state(config)
    assert [m.content for m in now.values["messages"]] == ["I am Bob", "Hi Bob."]
    history = [s async for s in graph.aget_state_history(config)]
    assert len(history) == 2 * len(states)  # both branches are kept
