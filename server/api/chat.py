"""`POST /chat` (one JSON answer) and `POST /chat/stream` (Server-Sent Events): turns on
threads the server keeps, formatted from the runner's events.

A streamed turn runs in a task of its own (server/live/) and its events are kept, so a
client that lost the stream sends the same request again with `Last-Event-ID` and gets
the rest of the same turn, from this replica or another; a turn whose client does not
come back within `PARLEY_RESUME_GRACE_SECONDS` is cancelled."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from langchain_core.messages import HumanMessage
from pydantic import BaseModel, Field, field_validator
from sse_starlette.sse import EventSourceResponse

from graphs.context import TurnContext
from server import approval
from server.agent_protocol.assistants import thread_metadata
from server.agent_protocol.service import AgentProtocol
from server.api.deps import (
    Admitted,
    CurrentUser,
    LiveDep,
    MaybeProtocol,
    PlatformDep,
    Profile,
    RateLimited,
    RunnerDep,
    SettingsDep,
)
from server.api.disconnect import unless_gone
from server.api.text import unicode_text
from server.api.thread_hold import Release, hold_thread, release_when_done, releasing
from server.live import Frame, LiveRun, LiveRuns, NoSuchRun
from server.live.runs import Produce
from server.platform import Agent, Platform
from server.runner import (
    Answer,
    ChatEvent,
    Done,
    Failed,
    Interrupted,
    StepStarted,
    StreamPart,
    Token,
    ToolFinished,
    ToolStarted,
    Usage,
    went_on,
)
from server.settings import Settings

log = logging.getLogger(__name__)

router = APIRouter(prefix="/chat", tags=["chat"], dependencies=[RateLimited, Admitted])

THREAD_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
TURN_ID = re.compile(r"[0-9a-f]{32}")  # uuid4().hex, as turn_of makes them
TURN_HEADER = "X-Turn-Id"
THREAD_ID_RULE = "thread_id must be 1-128 letters, digits or '_.:-'"


def check_thread_id(thread_id: str) -> None:
    """A thread id from a route's path: 422 with the rule, as a body's gets."""
    if not THREAD_ID.fullmatch(thread_id):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, THREAD_ID_RULE)


class ChatRequest(BaseModel):
    message: str = Field(description="The user's message.")
    thread_id: str | None = Field(
        default=None, description="Continue this thread; omit to start a new one.")
    agent: str = Field(default="assistant", description="Which agent answers (GET /agents).")

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("message is empty: send the text you want the agent to answer")
        return unicode_text(value)

    @field_validator("thread_id")
    @classmethod
    def _thread_id(cls, value: str | None) -> str | None:
        if value is not None and not THREAD_ID.fullmatch(value):
            raise ValueError(THREAD_ID_RULE)
        return value


class ChatResponse(BaseModel):
    thread_id: str
    turn_id: str
    agent: str
    message: dict[str, Any] | None
    tool_calls: list[dict[str, Any]]
    usage: dict[str, int] | None = None
    error: str | None = None
    error_kind: str | None = Field(
        default=None, description="Which part failed: model, store, overload or internal.")
    approval: dict[str, Any] | None = Field(
        default=None, description="The tool calls waiting for your decision (the turn "
        "paused before they ran): answer at POST /chat/threads/{thread_id}/decisions "
        "(docs/approval.md).")


def resolve_agent(platform: Platform, body: ChatRequest) -> Agent:
    if len(body.message) > platform.settings.max_message_chars:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"message is {len(body.message)} characters; the limit is "
            f"{platform.settings.max_message_chars}: shorten it or send it in parts",
        )
    agent = platform.agents.get(body.agent)
    if agent is None:
        known = ", ".join(sorted(platform.agents))
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"unknown agent {body.agent!r}; choose one of: {known}")
    return agent


def turn_of(body: ChatRequest, user_id: str, profile: dict[str, Any] | None) -> TurnContext:
    return TurnContext(user_id=user_id, thread_id=body.thread_id or uuid.uuid4().hex,
                       agent=body.agent, turn_id=uuid.uuid4().hex, profile=profile,
                       new_thread=body.thread_id is None)


BUSY_RESPONSE: dict[str, Any] = {"description": "Another message or run on this thread is "
                                 "being answered: send again once it is done."}


@router.post("", response_model=ChatResponse, responses={409: BUSY_RESPONSE})
async def chat(body: ChatRequest, request: Request, platform: PlatformDep, runner: RunnerDep,
               protocol: MaybeProtocol, user: CurrentUser, profile: Profile
               ) -> ChatResponse | Response:
    agent = resolve_agent(platform, body)
    ctx = turn_of(body, user.user_id, profile)
    release = await hold_thread(protocol, ctx.user_id, ctx.thread_id, ctx.turn_id,
                                new_thread=ctx.new_thread)
    try:
        events = runner.stream(agent.graph, ctx, [HumanMessage(body.message)], tokens=False)
        return await answer_whole(request, releasing(events, release), ctx, protocol)
    finally:
        await release()  # the turn never started (its events release it when it did)


async def answer_whole(request: Request, events: AsyncIterator[ChatEvent], ctx: TurnContext,
                       protocol: AgentProtocol | None) -> ChatResponse | Response:
    """`/chat`'s answer to a turn: the whole of it, once it is done (or paused)."""
    answered = await unless_gone(request, _whole(events, ctx))
    if answered is None:  # the client went away; the turn is cancelled, nobody reads this
        return Response(status_code=499)
    if answered.error is None:
        await _record_thread(protocol, ctx, paused=answered.approval is not None)
    return answered


async def _whole(events: AsyncIterator[ChatEvent], ctx: TurnContext) -> ChatResponse:
    response = ChatResponse(thread_id=ctx.thread_id, turn_id=ctx.turn_id, agent=ctx.agent,
                            message=None, tool_calls=[])
    async for event in events:
        if isinstance(event, Answer):
            response.message = _message(event, ctx)
        elif isinstance(event, Interrupted):
            response.approval = _approval(event, ctx)
        elif isinstance(event, ToolFinished):
            response.tool_calls.append(asdict(event))
        elif isinstance(event, Usage):
            response.usage = _usage(event)
        elif isinstance(event, Failed):
            response.error, response.error_kind = event.message, event.kind
    return response


async def _record_thread(protocol: AgentProtocol | None, ctx: TurnContext, *,
                         paused: bool) -> None:
    """The thread is also an Agent Protocol thread (found by `graph_id`), with the status
    the turn left it in (a decision sent here on a thread the Agent Protocol paused leaves
    it idle); a store that does not answer costs the listing, not the turn."""
    if protocol is None:
        return
    try:
        await protocol.store.touch_thread(ctx.user_id, ctx.thread_id,
                                          metadata=thread_metadata(ctx.agent),
                                          status="interrupted" if paused else "idle")
    except Exception:
        log.warning("could not record thread %s for the Agent Protocol", ctx.thread_id,
                    exc_info=True)


@router.post("/stream", response_class=EventSourceResponse, responses={
    200: {"content": {"text/event-stream": {}},
          "description": "Events: token, tool_start, tool_end, message, approval (the "
          "turn paused for your decision: docs/approval.md), error, done. "
          "Send the request again with `Last-Event-ID` to resume a stream you lost: the "
          "last event's id, or the `X-Turn-Id` header's value when no event arrived.",
          "headers": {TURN_HEADER: {"description": "The turn's id.",
                                    "schema": {"type": "string"}}}},
    409: BUSY_RESPONSE})
async def chat_stream(body: ChatRequest, request: Request, platform: PlatformDep,
                      runner: RunnerDep, live: LiveDep, protocol: MaybeProtocol,
                      settings: SettingsDep, user: CurrentUser, profile: Profile
                      ) -> EventSourceResponse:
    resumed = request.headers.get("last-event-id")
    if resumed:
        turn_id, after = _resume_point(resumed)
        try:
            await live.check(turn_id, user.user_id)
        except NoSuchRun as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND,
                                f"no turn {turn_id!r} of yours to resume: its events are "
                                f"kept {settings.run_events_ttl_seconds} s") from exc
        return EventSourceResponse(_sse(live.follow(turn_id, after), turn_id), ping=15,
                                   headers={TURN_HEADER: turn_id})
    agent = resolve_agent(platform, body)
    ctx = turn_of(body, user.user_id, profile)
    release = await hold_thread(protocol, ctx.user_id, ctx.thread_id, ctx.turn_id,
                                new_thread=ctx.new_thread)
    try:
        events = runner.stream(agent.graph, ctx, [HumanMessage(body.message)])
        return await stream_turn(live, settings, user.user_id, ctx.turn_id,
                                 streamed_turn(releasing(events, release), ctx, protocol),
                                 release)
    except BaseException:
        await release()  # the turn never began
        raise


async def stream_turn(live: LiveRuns, settings: Settings, user_id: str, stream_id: str,
                      produce: Produce, release: Release | None = None
                      ) -> EventSourceResponse:
    """Run a turn in a task of its own and stream its events, kept under `stream_id` for
    a client that comes back with `Last-Event-ID`; `release` is awaited once the task has
    ended, however it ended."""
    run = await live.begin(stream_id, user_id, produce, on_disconnect="cancel",
                           grace=settings.resume_grace_seconds)
    if release is not None and run.task is not None:
        release_when_done(run.task, release)
    return EventSourceResponse(_sse(live.follow(stream_id), stream_id), ping=15,
                               headers={TURN_HEADER: stream_id})


def _resume_point(event_id: str) -> tuple[str, int]:
    """The turn and the number of the last event a client had, from its `<turn>:<n>`; a
    bare `<turn>` (from the header) when the connection dropped before any event did."""
    turn_id, colon, seq = event_id.rpartition(":")
    if not colon:
        turn_id, seq = event_id, "-1"
    if not turn_id or not (seq.isdigit() or seq == "-1") or not TURN_ID.fullmatch(turn_id):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"Last-Event-ID {event_id!r} is not an event id of /chat/stream "
                            f"('<turn_id>:<n>' as the events carry, or the {TURN_HEADER} "
                            "header's '<turn_id>')")
    return turn_id, int(seq)


def streamed_turn(events: AsyncGenerator[ChatEvent], ctx: TurnContext,
                  protocol: AgentProtocol | None) -> Produce:
    async def produce(run: LiveRun) -> None:
        usage: Usage | None = None
        answered = paused = False
        async with aclosing(events):
            async for event in events:
                if isinstance(event, Usage):
                    usage = event
                answered = answered or went_on(event)
                paused = paused or isinstance(event, Interrupted)
                framed = _frame(event, ctx, usage)
                if framed is not None:
                    name, data = framed
                    run.log.append(name, json.dumps(data, default=str).encode())
        if answered:
            await _record_thread(protocol, ctx, paused=paused)

    return produce


async def _sse(frames: AsyncIterator[Frame], turn_id: str) -> AsyncIterator[dict[str, str]]:
    async for frame in frames:
        yield {"event": frame.event, "id": f"{turn_id}:{frame.seq}",
               "data": frame.data.decode()}


def _frame(event: ChatEvent, ctx: TurnContext, usage: Usage | None
           ) -> tuple[str, dict[str, Any]] | None:
    """The SSE event for a runner event; None for those this API does not send."""
    if isinstance(event, Token):
        return "token", {"text": event.text}
    if isinstance(event, ToolStarted):
        return "tool_start", asdict(event)
    if isinstance(event, ToolFinished):
        return "tool_end", asdict(event)
    if isinstance(event, Answer):
        return "message", _message(event, ctx)
    if isinstance(event, Failed):
        return "error", {"message": event.message, "kind": event.kind,
                         "retry_after": event.retry_after}
    if isinstance(event, Done):
        return "done", {"turn_id": event.turn_id, "thread_id": event.thread_id,
                        "usage": _usage(usage) if usage else None}
    if isinstance(event, Interrupted) and (approval := _approval(event, ctx)) is not None:
        return "approval", approval
    assert isinstance(event, StepStarted | Usage | Interrupted | StreamPart)
    return None


def _approval(event: Interrupted, ctx: TurnContext) -> dict[str, Any] | None:
    pending = approval.from_interrupts(event.interrupts)
    return approval.view(pending, ctx.thread_id) if pending is not None else None


def _message(answer: Answer, ctx: TurnContext) -> dict[str, Any]:
    return {"id": answer.id, "role": "assistant", "content": answer.content,
            "thread_id": ctx.thread_id, "agent": ctx.agent}


def _usage(usage: Usage) -> dict[str, int]:
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens}
