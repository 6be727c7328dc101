"""The turn runner on a real graph with a scripted model: the events in order, each step's
text, failures named by the part that failed (without internal addresses), and a turn
published to history only once it is complete."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.messages import AnyMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from redis.asyncio import Redis

from agents.fake import ScriptedChatModel, call, say
from graphs.builder import build_graph
from graphs.context import TurnContext, thread_config
from graphs.deps import GraphDeps
from memory.redis_checkpointer import RedisStringSaver
from server.embedded.redis_server import free_port
from server.metrics import Metrics
from server.runner import (
    Answer,
    ChatEvent,
    Done,
    Failed,
    Runner,
    StepStarted,
    Token,
    ToolFinished,
    ToolStarted,
    Usage,
)
from server.runner.failures import redact


@tool
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


CTX = TurnContext(user_id="ada", thread_id="t1", agent="assistant", turn_id="turn1")


def graph(script: list[Any], checkpointer: Any = None, cycle: bool = False, **deps: Any
          ) -> Any:
    model = ScriptedChatModel(script=script, cycle=cycle)
    return build_graph(GraphDeps(model=model, tools=[add], **deps)).compile(
        checkpointer=checkpointer or InMemorySaver())


async def run(runner: Runner, compiled: Any, text: str = "2+3?", **kwargs: Any
              ) -> list[ChatEvent]:
    return [e async for e in runner.stream(compiled, CTX, [HumanMessage(text)], **kwargs)]


def kinds(events: list[ChatEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


async def test_a_tool_turn_yields_its_events_in_order() -> None:
    events = await run(Runner(), graph([call("add", "Adding.", a=2, b=3), say("It is 5.")]))
    assert kinds(events) == ["StepStarted", "Token", "ToolStarted", "ToolFinished",
                             "StepStarted", "Token", "Token", "Token", "Token", "Token",
                             "Answer", "Usage", "Done"]
    started, finished = events[2], events[3]
    assert isinstance(started, ToolStarted) and started.args == {"a": 2, "b": 3}
    assert isinstance(finished, ToolFinished) and finished.output == "5"
    assert events[-3] == Answer(id=events[-3].id, content="It is 5.")  # type: ignore[union-attr]
    usage = events[-2]
    assert isinstance(usage, Usage) and usage.completion_tokens == 4  # "Adding." + 3 words
    assert events[-1] == Done(turn_id="turn1", thread_id="t1")


async def test_without_tokens_each_step_comes_whole() -> None:
    events = await run(Runner(), graph([call("add", "Adding.", a=2, b=3), say("It is 5.")]),
                       tokens=False)
    texts = [e.text for e in events if isinstance(e, Token)]
    assert texts == ["Adding.", "It is 5."]
    assert kinds(events).count("StepStarted") == 2


async def test_the_step_limit_note_is_the_answer_and_a_step_of_its_own() -> None:
    events = await run(Runner(), graph([call("add", a=1, b=1)], cycle=True, max_steps=2))
    answer = next(e for e in events if isinstance(e, Answer))
    assert answer.stopped_at_step_limit and answer.content.startswith("I stopped after 2")
    assert events[-4:-3] == [Token(answer.content)]
    assert isinstance(events[-5], StepStarted)


async def test_a_finished_turn_is_published_after_its_checkpoint() -> None:
    saver = InMemorySaver()
    compiled = graph([call("add", a=2, b=3), say("It is 5.")], checkpointer=saver)
    published: list[tuple[TurnContext, list[str]]] = []

    async def publish(ctx: TurnContext, messages: Sequence[AnyMessage]) -> None:
        stored = await saver.aget_tuple(thread_config(ctx.user_id, ctx.thread_id))
        assert stored is not None  # the thread's state is written before history hears
        published.append((ctx, [m.type for m in messages]))

    await run(Runner(publish=publish), compiled)
    assert published == [(CTX, ["human", "ai", "tool", "ai"])]


async def test_a_pause_is_reported_even_when_its_expiry_cannot_be_kept() -> None:
    from graphs.deps import ApprovalDeps
    from server.runner import Interrupted

    async def no_expiry(ctx: TurnContext, interrupts: Sequence[Any]) -> None:
        raise ConnectionError("Redis is restarting")

    compiled = graph([call("add", a=2, b=3)], approval=ApprovalDeps(gated=frozenset({"add"})))
    events = await run(Runner(paused=no_expiry), compiled)
    # The pause is checkpointed, so the turn is paused, not failed.
    assert kinds(events)[-3:] == ["Interrupted", "Usage", "Done"]
    assert isinstance(events[-3], Interrupted) and not any(
        isinstance(e, Failed) for e in events)


async def test_a_model_failure_names_the_model_without_its_address() -> None:
    def down(_messages: Any) -> Any:
        raise ConnectionError("cannot connect to http://10.1.2.3:11434/v1 (model-host:8080)")

    metrics = Metrics()
    published: list[Any] = []

    async def publish(ctx: TurnContext, messages: Sequence[AnyMessage]) -> None:
        published.append(messages)

    events = await run(Runner(metrics=metrics, publish=publish), graph([down]))
    assert kinds(events) == ["Failed", "Usage", "Done"]
    failed = events[0]
    assert isinstance(failed, Failed) and failed.kind == "model"
    assert "cannot connect" in failed.message and "10.1.2.3" not in failed.message
    assert "model-host" not in failed.message
    assert published == []  # a failed turn is not stored
    assert metrics.turn_failures.labels("assistant", "model")._value.get() == 1


async def test_a_store_outage_is_the_stores_fault_and_keeps_nothing() -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    published: list[Any] = []

    async def publish(ctx: TurnContext, messages: Sequence[AnyMessage]) -> None:
        published.append(messages)

    try:
        events = await run(Runner(publish=publish),
                           graph([say("hi")], checkpointer=RedisStringSaver(dead)))
    finally:
        await dead.aclose()
    failed = events[0]
    assert isinstance(failed, Failed) and failed.kind == "store"
    assert failed.retry_after and "127.0.0.1" not in failed.message
    assert "model" not in failed.message
    assert published == []


async def test_a_caller_that_goes_away_is_counted_as_cancelled() -> None:
    metrics = Metrics()
    events = Runner(metrics=metrics).stream(
        graph([call("add", "Adding.", a=2, b=3), say("It is 5.")]), CTX, [HumanMessage("x")])
    first = await anext(events)
    assert isinstance(first, StepStarted)
    await events.aclose()  # type: ignore[attr-defined]
    assert metrics.turns.labels("assistant", "cancelled")._value.get() == 1
    assert metrics.turns.labels("assistant", "ok")._value.get() == 0


@pytest.mark.parametrize(("text", "kept"), [
    ("Error 111 connecting to 127.0.0.1:6379. Connection refused.", "Connection refused."),
    ("POST https://api.example.com/v1/chat failed", "failed"),
    ("host [::1]:6380 down", "down"),
    ("redis:6379 timed out", "timed out"),
])
def test_addresses_are_redacted(text: str, kept: str) -> None:
    shown = redact(text)
    assert "[address]" in shown and kept in shown
    assert not any(part in shown for part in ("127.0.0.1", "example.com", "::1", "redis:"))
