"""The one place a chat turn is run. Every API hands its turn here and formats the events
it gets back; none iterates a LangGraph run itself.

The runner sets the log context, counts and logs the turn and its tool calls, adds up the
models' token usage, sends the step-limit note as the answer, marks where each step of the
answer begins, names the part a failed turn failed in, and publishes a finished turn to
history — only once the run, its checkpoint included, is complete, so a turn is either
stored and reported done, or reported failed and not stored.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any, cast

from langchain_core.messages import AIMessage, AIMessageChunk, AnyMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.types import StreamMode

from graphs.builder import TurnGraph
from graphs.context import TurnContext, run_config
from server import logs
from server.metrics import Metrics
from server.runner.events import (
    Answer,
    ChatEvent,
    Done,
    Interrupted,
    StepStarted,
    StreamPart,
    Token,
    ToolFinished,
    ToolStarted,
)
from server.runner.failures import classify
from server.runner.history import Publish
from server.runner.options import LANGGRAPH_MODES, PLAIN, RunOptions
from server.runner.own_task import in_own_task
from server.runner.records import record_tool_end, record_turn_end
from server.runner.usage import UsageCounter

TOKEN_MODES: list[StreamMode] = ["messages", "custom", "updates"]
QUIET_MODES: list[StreamMode] = ["custom", "updates"]  # no per-token events: cheaper
# The nodes whose messages make up the turn as history keeps it.
_TURN_NODES = ("agent", "approve", "tools", "step_limit")
_INTERRUPT = "__interrupt__"

log = logging.getLogger(__name__)


# Told of a kept thread's run that paused at interrupts (tool approval schedules its expiry).
PauseHook = Callable[[TurnContext, Sequence[Any]], Awaitable[None]]


@dataclass(frozen=True)
class Runner:
    metrics: Metrics | None = None
    publish: Publish | None = None  # a finished, kept turn to the history stream
    paused: PauseHook | None = None

    async def stream(self, graph: TurnGraph, ctx: TurnContext,
                     messages: Sequence[AnyMessage] | None, *, tokens: bool = True,
                     parent: RunnableConfig | None = None,
                     options: RunOptions = PLAIN) -> AsyncGenerator[ChatEvent]:
        """Run `ctx`'s turn on `messages` (the new user message, or a client's whole
        conversation; None: no new input, the thread goes on from its checkpoint) and
        yield its events. `tokens=False` gives each step's text whole instead of token by
        token. `parent` is a caller's own run config (LangServe's), whose callbacks then
        see the graph's run. `options` are the Agent Protocol's (resume, branch, LangGraph's
        stream modes). Closing the iteration cancels the run, running tools included."""
        ctx = ctx if ctx.turn_id else _with_turn_id(ctx)
        logs.user_id.set(ctx.user_id)
        logs.thread_id.set(ctx.thread_id)
        logs.turn_id.set(ctx.turn_id)
        said = [m if m.id else m.model_copy(update={"id": uuid.uuid4().hex})
                for m in messages or ()]
        usage = UsageCounter()
        callbacks: list[Any] = [usage]
        if self.metrics is not None:
            callbacks.append(self.metrics.model_callback)
        config = run_config(ctx, callbacks=callbacks, checkpoint_id=options.checkpoint_id)
        if parent is not None:
            config = merge_configs(parent, config)
        started = time.perf_counter()
        # What history keeps: the new input on (a client-kept conversation's last message).
        turn: list[AnyMessage] = list(said if ctx.persist else said[-1:])
        answer: Answer | None = None
        interrupts: list[Any] | None = None  # set once the run paused
        step_ended = True  # the next words begin a step
        outcome = "cancelled"
        try:
            run = in_own_task(_graph_run(graph, ctx, config, said, messages is None,
                                         tokens=tokens, options=options))
            async with aclosing(run):
                async for part in run:
                    mode, chunk = cast(tuple[str, Any], part)
                    if mode in options.passthrough:
                        yield StreamPart(mode, chunk)
                    if mode == "messages":
                        if not tokens or (text := _answer_token(chunk)) is None:
                            continue
                        if step_ended:
                            step_ended = False
                            yield StepStarted()
                        yield Token(text)
                    elif mode == "custom":
                        if (event := _tool_event(chunk)) is None:
                            continue
                        if isinstance(event, ToolFinished):
                            record_tool_end(event, agent=ctx.agent, turn_id=ctx.turn_id,
                                            metrics=self.metrics)
                        yield event
                    elif mode == "updates" and isinstance(chunk, dict):
                        step_ended = True
                        if _INTERRUPT in chunk:
                            interrupts = [*(interrupts or ()), *(chunk[_INTERRUPT] or ())]
                        for node, update in chunk.items():
                            if node not in _TURN_NODES or not isinstance(update, dict):
                                continue
                            written = list(update.get("messages") or [])
                            _keep(turn, written)
                            for text in _whole_texts(node, written, tokens=tokens):
                                yield StepStarted()
                                yield Token(text)
                            if answer is None:
                                answer = _final(node, written)
            if self.publish is not None and ctx.persist and turn:
                # A paused run is kept as far as it went: its checkpoint holds it, and
                # the run that resumes it publishes the rest.
                await self.publish(ctx, turn)
            if self.paused is not None and ctx.persist and interrupts is not None:
                try:
                    await self.paused(ctx, interrupts)
                except Exception:
                    # The pause is checkpointed and shown all the same; only its expiry
                    # is missing, and a decision still resumes it.
                    log.exception("turn %s: could not schedule its approval's expiry",
                                  ctx.turn_id)
            outcome = "ok" if interrupts is None else "interrupted"
        except Exception as exc:
            failure = classify(exc, turn_id=ctx.turn_id)
            outcome = "error"
            record_turn_end(agent=ctx.agent, turn_id=ctx.turn_id, started=started,
                            metrics=self.metrics, outcome=outcome, failure=failure.kind)
            yield failure
            yield usage.usage()
            yield Done(turn_id=ctx.turn_id, thread_id=ctx.thread_id)
            return
        finally:
            if outcome == "cancelled":  # the caller went away (or closed us) midway
                record_turn_end(agent=ctx.agent, turn_id=ctx.turn_id, started=started,
                                metrics=self.metrics, outcome=outcome)
        record_turn_end(agent=ctx.agent, turn_id=ctx.turn_id, started=started,
                        metrics=self.metrics, outcome=outcome)
        if interrupts is not None:
            yield Interrupted(tuple(interrupts))
        else:
            yield answer or Answer(id=None, content="")
        yield usage.usage()
        yield Done(turn_id=ctx.turn_id, thread_id=ctx.thread_id)


def _graph_run(graph: TurnGraph, ctx: TurnContext, config: RunnableConfig,
               said: list[AnyMessage], no_input: bool, *, tokens: bool,
               options: RunOptions) -> AsyncIterator[Any]:
    """The graph's run as (mode, chunk) pairs: LangGraph's stream, or, when the caller
    asked for "events", the root run's stream parts out of `astream_events`, each event
    also passed on as ("events", event)."""
    modes: list[StreamMode] = list(TOKEN_MODES if tokens else QUIET_MODES)
    modes += sorted(m for m in options.passthrough  # type: ignore[misc]
                    if m in LANGGRAPH_MODES and m not in modes)
    graph_input: Any = options.command if options.command is not None \
        else None if no_input else {"messages": said}
    # Checkpoint once, when the run ends, instead of after every step: a turn that fails
    # midway is retried whole anyway, and each write costs a Redis round. A caller that
    # browses or branches from every step asks for "async" or "sync".
    durability = options.durability or ("exit" if graph.checkpointer else None)
    kwargs: dict[str, Any] = {"context": ctx, "stream_mode": modes, "durability": durability}
    if options.interrupt_before is not None:
        kwargs["interrupt_before"] = options.interrupt_before
    if options.interrupt_after is not None:
        kwargs["interrupt_after"] = options.interrupt_after
    if "events" not in options.passthrough:
        return graph.astream(graph_input, config, **kwargs)
    return _with_events(graph.astream_events(graph_input, config, version="v2", **kwargs))


async def _with_events(events: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for event in events:
        yield ("events", event)
        if event["event"] == "on_chain_stream" and not event.get("parent_ids"):
            yield event["data"]["chunk"]  # the root run's (mode, chunk)


def _keep(turn: list[AnyMessage], written: list[Any]) -> None:
    """Add a step's messages to the turn; one written again (a call the user edited before
    it ran) takes its earlier copy's place."""
    at = {m.id: i for i, m in enumerate(turn) if m.id}
    for message in written:
        if message.id in at:
            turn[at[message.id]] = message
        else:
            turn.append(message)


def _with_turn_id(ctx: TurnContext) -> TurnContext:
    return replace(ctx, turn_id=uuid.uuid4().hex)


def _answer_token(chunk: Any) -> str | None:
    """The text of a `messages`-mode chunk when it is a token of the agent's answer (not of
    the summary fold or a tool's own model call), else None."""
    token, meta = chunk
    if (isinstance(token, AIMessageChunk) and token.content
            and meta.get("langgraph_node") == "agent"):
        return token.text
    return None


def _tool_event(chunk: Any) -> ToolStarted | ToolFinished | None:
    if not isinstance(chunk, dict):
        return None
    if chunk.get("event") == "tool_start":
        return ToolStarted(tool=chunk["tool"], call_id=chunk["call_id"], args=chunk["args"])
    if chunk.get("event") == "tool_end":
        return ToolFinished(tool=chunk["tool"], call_id=chunk["call_id"],
                            status=chunk["status"], output=chunk["output"],
                            duration_ms=chunk["duration_ms"])
    return None


def _whole_texts(node: str, written: list[Any], *, tokens: bool) -> list[str]:
    """Text that streamed no tokens: every agent step's whole text when the turn runs
    without tokens, and the step-limit note always (no model wrote it)."""
    if node == "agent" and tokens:
        return []
    if node not in ("agent", "step_limit"):
        return []
    return [m.text for m in written
            if isinstance(m, AIMessage) and m.text and (node == "agent" or not m.tool_calls)]


def _final(node: str, written: list[Any]) -> Answer | None:
    """The turn's answer, when this node wrote it: the agent's message without tool calls,
    or the note of a turn stopped at the step limit."""
    if node not in ("agent", "step_limit"):
        return None
    for message in reversed(written):
        if isinstance(message, AIMessage) and not message.tool_calls:
            return Answer(id=message.id, content=message.text,
                          stopped_at_step_limit=node == "step_limit")
    return None

