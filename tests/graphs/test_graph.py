"""The turn graph with a scripted model: tool calls, failures, limits and threads."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.tools import ToolException, tool
from langgraph.checkpoint.memory import InMemorySaver

from agents.fake import ScriptedChatModel, call, say
from graphs.builder import build_graph
from graphs.context import TurnContext
from graphs.deps import GraphDeps, Recalled


@tool
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


@tool
async def sleepy(seconds: float) -> str:
    """Wait, then answer."""
    await asyncio.sleep(seconds)
    return "awake"


@tool
def broken(reason: str) -> str:
    """Always fails."""
    raise ToolException(f"broken because {reason}")


@tool
def crashes() -> str:
    """Raises an unexpected error."""
    raise RuntimeError("disk on fire")


def config(thread: str = "t1", user: str = "u1") -> dict:
    return {"configurable": {"thread_id": thread, "user_id": user, "agent": "test"}}


def compile_graph(model: ScriptedChatModel, **kwargs):
    deps = GraphDeps(model=model, tools=[add, sleepy, broken, crashes], **kwargs)
    return build_graph(deps).compile(checkpointer=InMemorySaver())


async def test_graph_has_the_documented_shape() -> None:
    graph = compile_graph(ScriptedChatModel(script=[say("hi")]))
    nodes = set(graph.get_graph().nodes)
    assert {"recall", "agent", "tools", "step_limit", "remember"} <= nodes


async def test_tool_call_then_answer() -> None:
    model = ScriptedChatModel(script=[call("add", a=2, b=3), say("2 + 3 = 5")])
    graph = compile_graph(model)
    result = await graph.ainvoke({"messages": [HumanMessage("what is 2+3?")]}, config())
    tool_messages = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert [m.content for m in tool_messages] == ["5"]
    assert result["messages"][-1].content == "2 + 3 = 5"
    # The second model call saw the tool's result.
    assert any(isinstance(m, ToolMessage) and m.content == "5" for m in model.calls[1])
    assert model.bound_tools == ["add", "sleepy", "broken", "crashes"]


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (call("broken", reason="no fuel"), "broken because no fuel"),
        (call("crashes"), "disk on fire"),
        (call("nonexistent"), "not a valid tool"),
        (call("add", a="two", b=3), "valid integer"),
    ],
)
async def test_failing_tools_become_messages_to_the_model(step: AIMessage, expected: str) -> None:
    model = ScriptedChatModel(script=[step, say("Sorry, that failed.")])
    result = await compile_graph(model).ainvoke({"messages": [HumanMessage("go")]}, config())
    error = next(m for m in result["messages"] if isinstance(m, ToolMessage))
    assert error.status == "error"
    assert expected in str(error.content)
    assert result["messages"][-1].content == "Sorry, that failed."


async def test_tool_timeout_stops_the_call_and_the_turn_goes_on() -> None:
    model = ScriptedChatModel(script=[call("sleepy", seconds=30), say("It timed out.")])
    graph = compile_graph(model, tool_timeout=0.2)
    result = await graph.ainvoke({"messages": [HumanMessage("sleep")]}, config())
    error = next(m for m in result["messages"] if isinstance(m, ToolMessage))
    assert error.status == "error" and "took too long" in str(error.content)
    assert result["messages"][-1].content == "It timed out."


async def test_step_limit_ends_a_tool_loop() -> None:
    model = ScriptedChatModel(script=[call("add", a=1, b=1)], cycle=True)
    graph = compile_graph(model, max_steps=3)
    result = await graph.ainvoke({"messages": [HumanMessage("loop")]}, config())
    assert len(model.calls) == 3
    last = result["messages"][-1]
    assert isinstance(last, AIMessage) and "stopped after 3 steps" in last.text
    # Every tool call has an answer, so the thread can go on with any provider.
    asked = {c["id"] for m in result["messages"] if isinstance(m, AIMessage)
             for c in m.tool_calls}
    answered = {m.tool_call_id for m in result["messages"] if isinstance(m, ToolMessage)}
    assert asked == answered


async def test_threads_keep_their_history_and_stay_apart() -> None:
    model = ScriptedChatModel(script=[say("Nice to meet you, Ada."), say("You are Ada."),
                                      say("I don't know your name.")])
    graph = compile_graph(model)
    await graph.ainvoke({"messages": [HumanMessage("I am Ada")]}, config("a"))
    await graph.ainvoke({"messages": [HumanMessage("Who am I?")]}, config("a"))
    assert "I am Ada" in [m.content for m in model.calls[1]]
    await graph.ainvoke({"messages": [HumanMessage("Who am I?")]}, config("b"))
    assert "I am Ada" not in [m.content for m in model.calls[2]]


async def test_recall_feeds_the_prompt_and_remember_gets_the_turn() -> None:
    seen: list[tuple[TurnContext, list[str]]] = []

    async def recall(ctx: TurnContext, messages: Sequence[AnyMessage]) -> Recalled:
        return Recalled(context=f"{ctx.user_id} likes tea", summary="They talked about tea.")

    async def remember(ctx: TurnContext, messages: Sequence[AnyMessage]) -> None:
        seen.append((ctx, [m.type for m in messages]))

    model = ScriptedChatModel(script=[call("add", a=1, b=2), say("3")])
    graph = compile_graph(model, recall=recall, remember=remember,
                          instructions="Be terse.")
    await graph.ainvoke({"messages": [HumanMessage("1+2")]}, config(user="zoe"),
                        context=TurnContext("zoe", "t1", "test"))
    system = model.calls[0][0]
    assert system.type == "system"
    assert "Be terse." in system.text and "zoe likes tea" in system.text
    assert "They talked about tea." in system.text
    assert seen == [(TurnContext("zoe", "t1", "test"), ["human", "ai", "tool", "ai"])]


async def test_stream_emits_tokens_and_tool_events_in_order() -> None:
    model = ScriptedChatModel(script=[call("add", a=2, b=2), say("Four it is")])
    graph = compile_graph(model)
    order: list[str] = []
    async for mode, chunk in graph.astream({"messages": [HumanMessage("2+2")]}, config(),
                                           stream_mode=["messages", "custom"]):
        if mode == "custom":
            order.append(chunk["event"])
        elif chunk[1]["langgraph_node"] == "agent" and chunk[0].content:
            order.append("token")
    assert order == ["tool_start", "tool_end", "token", "token", "token", "token", "token"]


async def test_a_paused_turn_restored_from_history_gets_its_calls_settled() -> None:
    """A thread whose checkpoint was lost while a call waited for approval: its history
    holds the model's call with no result, which no model accepts, so the call is settled
    as unrun before the model reads the thread."""
    waited = AIMessage(content="", id="ai1", tool_calls=[
        {"name": "add", "args": {"a": 1, "b": 2}, "id": "c1", "type": "tool_call"}])

    async def recall(ctx: TurnContext, messages: Sequence[AnyMessage]) -> Recalled:
        return Recalled(restored=[HumanMessage("add 1 and 2", id="h1"), waited])

    model = ScriptedChatModel(script=[say("ok")])
    graph = compile_graph(model, recall=recall)
    await graph.ainvoke({"messages": [HumanMessage("never mind")]}, config())
    prompt = model.calls[0]
    assert [m.type for m in prompt[1:]] == ["human", "ai", "tool", "human"]
    [note] = [m for m in prompt if isinstance(m, ToolMessage)]
    assert note.tool_call_id == "c1" and "Not run" in note.text
