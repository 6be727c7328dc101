"""What the runner does for the Agent Protocol (RunOptions): LangGraph's own stream parts
passed through, a run that pauses at `interrupt()` reported as Interrupted and resumed
with a Command, a branch from a kept checkpoint, and a paused turn published as far as
it went."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command, interrupt

from agents.fake import ScriptedChatModel, call, say
from graphs.builder import build_graph
from graphs.context import TurnContext, thread_config
from graphs.deps import GraphDeps
from server.runner import Answer, Interrupted, Runner, RunOptions, StreamPart

CTX = TurnContext(user_id="ada", thread_id="t1", agent="assistant", turn_id="turn1")


@tool
def send(to: str) -> str:
    """Send a message, once a person says so."""
    answer = interrupt({"tool": "send", "to": to})
    return f"sent to {to}" if answer == "yes" else "not sent"


def graph(script: list[Any]) -> Any:
    return build_graph(GraphDeps(model=ScriptedChatModel(script=script), tools=[send])
                       ).compile(checkpointer=InMemorySaver())


async def events(runner: Runner, compiled: Any, messages: Sequence[AnyMessage] | None,
                 ctx: TurnContext = CTX, **options: Any) -> list[Any]:
    return [e async for e in runner.stream(compiled, ctx, messages,
                                           options=RunOptions(**options))]


async def test_stream_parts_pass_through_beside_the_chat_events() -> None:
    seen = await events(Runner(), graph([say("Hi.")]), [HumanMessage("hello")],
                        passthrough=frozenset({"values", "events"}))
    parts = [e for e in seen if isinstance(e, StreamPart)]
    values = [p.data for p in parts if p.mode == "values"]
    assert [m.content for m in values[-1]["messages"]] == ["hello", "Hi."]
    assert {p.data["event"] for p in parts if p.mode == "events"} >= {"on_chain_start",
                                                                      "on_chat_model_end"}
    assert isinstance([e for e in seen if not isinstance(e, StreamPart)][-3], Answer)
    plain = await events(Runner(), graph([say("Hi.")]), [HumanMessage("hello")])
    assert not any(isinstance(e, StreamPart) for e in plain)  # the chat APIs see none


async def test_a_run_that_asks_pauses_and_goes_on_with_the_answer() -> None:
    published: list[list[str]] = []

    async def publish(_ctx: TurnContext, messages: Sequence[AnyMessage]) -> None:
        published.append([str(m.content) for m in messages])

    runner = Runner(publish=publish)
    compiled = graph([call("send", "Sending.", to="bob"), say("Done.")])
    paused = await events(runner, compiled, [HumanMessage("tell bob")])
    kinds = [type(e).__name__ for e in paused]
    assert kinds[-3:] == ["Interrupted", "Usage", "Done"] and "Answer" not in kinds
    interrupted = paused[-3]
    assert isinstance(interrupted, Interrupted)
    assert interrupted.interrupts[0].value == {"tool": "send", "to": "bob"}
    assert published == [["tell bob", "Sending."]]  # kept as far as it went
    state = await compiled.aget_state(thread_config("ada", "t1"))
    assert state.next == ("tools",)
    resumed = await events(runner, compiled, None, command=Command(resume="yes"))
    answer = [e for e in resumed if isinstance(e, Answer)]
    assert [a.content for a in answer] == ["Done."]
    assert published[-1] == ["sent to bob", "Done."]  # the rest, once


async def test_a_run_goes_on_from_a_kept_checkpoint() -> None:
    def echo(messages: list[Any]) -> AIMessage:
        return say(f"You said: {messages[-1].content}")

    compiled = graph([echo, echo, echo])
    await events(Runner(), compiled, [HumanMessage("one")], durability="async")
    history = [s async for s in compiled.aget_state_history(thread_config("ada", "t1"))]
    start = next(s for s in history if s.next == ("__start__",))  # before "one"
    await events(Runner(), compiled, [HumanMessage("two")], durability="async")
    await events(Runner(), compiled, [HumanMessage("other")], durability="async",
                 checkpoint_id=start.config["configurable"]["checkpoint_id"])
    state = await compiled.aget_state(thread_config("ada", "t1"))
    assert [m.content for m in state.values["messages"]] == ["other", "You said: other"]
