"""Tool approval over `/chat` (docs/approval.md):

- `GET /chat/threads/{id}/approval`: the calls the thread waits on, if any;
- `POST /chat/threads/{id}/decisions`: approve, edit, reject or respond; once every
  waiting call is decided the turn goes on, answered as `/chat` answers (JSON) or, with
  `Accept: text/event-stream`, streamed as `/chat/stream` streams;
- `/chat/approvals/always-allow`: the tools you let run without asking, to list, add and
  revoke.

Only the thread's owner finds its approval: anyone else gets 404, as for a thread that
does not exist."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from langgraph.types import Command
from pydantic import BaseModel

from graphs.context import TurnContext
from server.api import deps
from server.api.chat import (
    ChatResponse,
    answer_whole,
    check_thread_id,
    stream_turn,
    streamed_turn,
)
from server.approval import ApprovalStore, Pending, find_pending, view
from server.approval.decisions import DecisionsIn, Refused, resume_items
from server.platform import Platform
from server.runner import Answer, ChatEvent, Interrupted, RunOptions

router = APIRouter(prefix="/chat", tags=["approval"])


class Undecided(BaseModel):
    """Some calls of the step are decided; the turn goes on once the rest are."""

    id: str
    thread_id: str
    decided: list[str]
    waiting: list[str]


class AlwaysAllowed(BaseModel):
    tools: list[str]


async def _pending(platform: Platform, user_id: str, thread_id: str) -> Pending:
    check_thread_id(thread_id)
    pending = await find_pending(platform.checkpointer, user_id, thread_id)
    if pending is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"no tool call of thread {thread_id!r} waits for a decision")
    return pending


@router.get("/threads/{thread_id}/approval")
async def pending_approval(thread_id: str, platform: deps.PlatformDep, user: deps.CurrentUser
                           ) -> dict[str, Any]:
    return view(await _pending(platform, user.user_id, thread_id), thread_id)


@router.post("/threads/{thread_id}/decisions", dependencies=[deps.RateLimited, deps.Admitted],
             response_model=ChatResponse | Undecided, responses={
                 200: {"content": {"text/event-stream": {}},
                       "description": "The rest of the turn, as /chat answers it, or as "
                       "/chat/stream streams it when asked with Accept: "
                       "text/event-stream."},
                 202: {"model": Undecided, "description": "Other calls still wait."}})
async def decide(thread_id: str, body: DecisionsIn, request: Request, platform: deps.PlatformDep,
                 runner: deps.RunnerDep, live: deps.LiveDep, protocol: deps.MaybeProtocol,
                 settings: deps.SettingsDep, user: deps.CurrentUser, profile: deps.Profile) -> Any:
    pending = await _pending(platform, user.user_id, thread_id)
    if body.id is not None and body.id != pending.id:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"approval {body.id!r} is no longer the one waiting: it was "
                            f"decided; {pending.id!r} waits now (GET "
                            f"/chat/threads/{thread_id}/approval)")
    agent = platform.agents.get(pending.agent)
    if agent is None:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"agent {pending.agent!r} is gone from this server: send a new "
                            "message to go on without these calls")
    store = platform.approvals
    ttl = settings.approval_timeout_seconds
    try:
        decided, always = resume_items(body, pending, agent.tools_by_name,
                                       await store.partial(user.user_id, pending.id))
    except Refused as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    for tool in always:
        await store.allow(user.user_id, tool)
    waiting = [c for c in pending.call_ids if c not in decided]
    if waiting:
        await store.keep_partial(user.user_id, pending.id, decided, ttl)
        return JSONResponse(Undecided(id=pending.id, thread_id=thread_id, decided=list(decided),
                                      waiting=waiting).model_dump(), status_code=202)
    if not await store.claim(user.user_id, pending.id, ttl):
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"approval {pending.id!r} is being decided by another request")
    ctx = TurnContext(user_id=user.user_id, thread_id=thread_id, agent=agent.spec.name,
                      turn_id=str(pending.request.get("turn_id") or uuid.uuid4().hex),
                      profile=profile)
    resume: Command[Any] = Command(resume={"decisions": [decided[c] for c in pending.call_ids]})
    events = _settled(runner.stream(agent.graph, ctx, None, options=RunOptions(
        command=resume), tokens=_streams(request)), store, user.user_id, pending.id)
    if _streams(request):
        # The rest of the turn is kept under an id of its own: the paused part's events
        # are kept under the turn's.
        return await stream_turn(live, settings, user.user_id, uuid.uuid4().hex,
                                 streamed_turn(events, ctx, protocol))
    return await answer_whole(request, events, ctx, protocol)


def _streams(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "")


async def _settled(events: AsyncGenerator[ChatEvent], store: ApprovalStore, user_id: str,
                   approval_id: str) -> AsyncGenerator[ChatEvent]:
    """The resumed turn's events. A turn that failed or was cancelled before it went on
    lets the approval be decided again: its checkpoint still waits, nothing ran."""
    went_on = False
    try:
        async for event in events:
            went_on = went_on or isinstance(event, Answer | Interrupted)
            yield event
    finally:
        await events.aclose()
        if not went_on:
            await store.release(user_id, approval_id)


@router.get("/approvals/always-allow", response_model=AlwaysAllowed)
async def always_allowed(platform: deps.PlatformDep, user: deps.CurrentUser) -> AlwaysAllowed:
    return AlwaysAllowed(tools=sorted(await platform.approvals.always_allowed(user.user_id)))


@router.put("/approvals/always-allow/{tool}", status_code=status.HTTP_204_NO_CONTENT)
async def allow_always(tool: str, platform: deps.PlatformDep, user: deps.CurrentUser) -> Response:
    known = {t.tool.name for t in platform.all_tools()}
    if tool not in known:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"no tool {tool!r}; GET /tools lists them")
    await platform.approvals.allow(user.user_id, tool)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/approvals/always-allow/{tool}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke(tool: str, platform: deps.PlatformDep, user: deps.CurrentUser) -> Response:
    if not await platform.approvals.revoke(user.user_id, tool):
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"{tool!r} is not among the tools you always allow")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
