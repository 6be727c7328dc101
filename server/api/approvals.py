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
from server.api.thread_hold import Release, hold_thread, releasing
from server.approval import ApprovalStore, Pending, find_pending, view
from server.approval.claims import bound, take
from server.approval.decisions import DecisionsIn, body_decisions, check_decisions
from server.platform import Platform
from server.runner import RunOptions

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
    pending = await _pending(platform, user.user_id, thread_id)
    return view(pending, thread_id,
                decided=await platform.approvals.decided(user.user_id, pending.id))


@router.post("/threads/{thread_id}/decisions", dependencies=[deps.RateLimited, deps.Admitted],
             response_model=ChatResponse | Undecided, responses={
                 200: {"content": {"text/event-stream": {}},
                       "description": "The rest of the turn, as /chat answers it, or as "
                       "/chat/stream streams it when asked with Accept: "
                       "text/event-stream."},
                 202: {"model": Undecided, "description": "Other calls still wait."},
                 409: {"description": "Another decision on this approval runs, the "
                       "approval named by `id` no longer waits, or another message on "
                       "the thread is being answered."}})
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
    now, always = body_decisions(body, pending, agent.tools_by_name,
                                 await store.decided(user.user_id, pending.id))
    # Merged atomically with what other requests decided, so one-by-one decisions sent
    # at the same time cannot overwrite each other (and need not hold the thread: only the
    # decision that completes the set runs the turn).
    decided = await store.add_decisions(user.user_id, pending.id, now, ttl)
    waiting = [c for c in pending.call_ids if c not in decided]
    if waiting:
        await _allow(store, user.user_id, always)
        return JSONResponse(Undecided(id=pending.id, thread_id=thread_id, decided=list(decided),
                                      waiting=waiting).model_dump(), status_code=202)
    answer = {"decisions": [decided[c] for c in pending.call_ids]}
    check_decisions(answer, pending, agent.tools_by_name)
    # The claim first, so a second decision on this approval hears that one runs; then
    # the thread, which a message being answered may hold (the decisions stay kept, and
    # the same decision sent again runs once it is free).
    claim = await take(store, platform.checkpointer, user.user_id, thread_id, pending, ttl=ttl)
    releases: list[Release] = [claim.release]
    try:
        # The rest of the turn is kept under an id of its own: the paused part's events
        # are kept under the turn's.
        rest_id = uuid.uuid4().hex
        releases.append(await hold_thread(protocol, user.user_id, thread_id, rest_id))
        await _allow(store, user.user_id, always)  # the decision runs: it holds
        ctx = TurnContext(user_id=user.user_id, thread_id=thread_id, agent=agent.spec.name,
                          turn_id=str(pending.request.get("turn_id") or uuid.uuid4().hex),
                          profile=profile)
        # The resume names the approval's interrupt, so a decision sent after this one
        # ran answers nothing, and the claim need not outlive the run.
        events = releasing(runner.stream(agent.graph, ctx, None, options=RunOptions(
            command=Command(resume=bound(pending, answer))), tokens=_streams(request)),
            *releases)
        if not _streams(request):
            try:
                return await answer_whole(request, events, ctx, protocol)
            finally:
                await _release_all(releases)  # the run has ended (or never started)
        return await stream_turn(live, settings, user.user_id, rest_id,
                                 streamed_turn(events, ctx, protocol),
                                 lambda: _release_all(releases))
    except BaseException:
        # The run never began: the approval may be decided again, and what was decided
        # stays (a card decided before the last one need not be decided twice).
        await claim.release(keep_decisions=True)
        await _release_all(releases)
        raise


async def _release_all(releases: list[Release]) -> None:
    for release in releases:
        await release()


def _streams(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "")


async def _allow(store: ApprovalStore, user_id: str, tools: set[str]) -> None:
    for tool in tools:
        await store.allow(user_id, tool)


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
