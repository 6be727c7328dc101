"""Runs: a turn on a thread (or on a conversation the client sends, stateless), streamed,
waited for, or left to run in the background; listed, joined, cancelled. Each goes
through the one runner (server/agent_protocol/manager.py); these routes parse and
format."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, cast

from fastapi import APIRouter, HTTPException, Request, Response, status
from langchain_core.messages import AnyMessage, convert_to_messages
from langchain_core.utils.uuid import uuid7
from langgraph.types import Command
from sse_starlette.sse import EventSourceResponse

from graphs.context import thread_config
from server.agent_protocol.assistants import assistant_id, thread_metadata
from server.agent_protocol.manager import RunRequest, ThreadBusy
from server.agent_protocol.serde import dumps
from server.agent_protocol.service import AgentProtocol
from server.agent_protocol.state import latest_values
from server.agent_protocol.store import ACTIVE, RunRecord, ThreadRecord
from server.api.agent_protocol.common import (
    find_agent,
    last_event_id,
    mode_filter,
    nothing,
    sse_response,
)
from server.api.agent_protocol.schemas import RunCreate
from server.api.agent_protocol.threads import caller_thread
from server.api.chat import check_thread_id
from server.api.deps import (
    Admitted,
    CurrentUser,
    PlatformDep,
    Profile,
    ProtocolDep,
    RateLimited,
    SettingsDep,
)
from server.api.disconnect import unless_gone
from server.approval.claims import claim_resume
from server.live import LiveRun, NoSuchRun
from server.platform import Agent, Platform
from server.runner import RunOptions
from server.settings import Settings

router = APIRouter(tags=["agent protocol"])
# Each runs a turn: rate-limited, and holding a turn slot while its response lasts (a
# background run's slot ends with its 202; the run itself is bounded by the Redis pool).
turns = APIRouter(tags=["agent protocol"], dependencies=[RateLimited, Admitted])

BUSY = ("Thread is already running a task. Wait for it to finish or choose a different "
        "multitask_strategy (enqueue, interrupt, rollback).")


def _messages(body: RunCreate, settings: Settings) -> list[AnyMessage] | None:
    if body.command is not None or body.input is None:
        return None
    raw = body.input.get("messages", [])
    if isinstance(raw, dict | str):
        raw = [raw]
    if not isinstance(raw, list):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "input.messages must be a list of messages such as "
                            '{"type": "human", "content": "Hi"}')
    try:
        messages = cast(list[AnyMessage], convert_to_messages(raw))
    except (ValueError, TypeError, NotImplementedError) as exc:
        reason = str(exc).splitlines()[0]  # not LangChain's troubleshooting link
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"input.messages: {reason}; send messages such as "
                            '{"type": "human", "content": "Hi"}') from exc
    for message in messages:
        if len(message.text) > settings.max_message_chars:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                                f"a message is {len(message.text)} characters; the limit is "
                                f"{settings.max_message_chars}: shorten it or send it in "
                                "parts")
    return messages


def _breakpoints(value: Any, nodes: set[str], field: str) -> Any:
    if value is None or value == "*":
        return value
    unknown = [n for n in value if n not in nodes]
    if unknown:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"{field}: {', '.join(map(repr, unknown))} is not a node of the "
                            f"graph: choose from {', '.join(sorted(nodes))}")
    return list(value)


async def _run_request(body: RunCreate, *, protocol: AgentProtocol, platform: Platform,
                       settings: Settings, owner: str, profile: Any,
                       thread: ThreadRecord | None, kept: bool) -> RunRequest:
    name, agent = find_agent(platform, body.assistant_id)
    if thread is None and (body.command is not None or body.wanted_checkpoint):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "a stateless run has no thread to resume or branch: run on "
                            "a thread (POST /threads/{thread_id}/runs/...)")
    checkpoint_id = body.wanted_checkpoint
    if thread is not None and checkpoint_id:
        config = thread_config(owner, thread.thread_id)
        config["configurable"]["checkpoint_id"] = checkpoint_id
        if await platform.checkpointer.aget_tuple(config) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND,
                                f"checkpoint {checkpoint_id!r} of thread "
                                f"{thread.thread_id!r} is not kept (a thread keeps its "
                                f"{settings.thread_checkpoints} latest checkpoints)")
    nodes = {n for n in agent.graph.nodes if not n.startswith("__")}
    before = _breakpoints(body.interrupt_before, nodes, "interrupt_before")
    after = _breakpoints(body.interrupt_after, nodes, "interrupt_after")
    messages = _messages(body, settings)
    command, approval_id = None, None
    if body.command is not None:  # a tool approval's answer is claimed last, once valid
        resume, approval_id = await _resume(platform, settings, owner, thread, agent,
                                            body.command.resume)
        command = Command(resume=resume, update=body.command.update,
                          goto=body.command.goto or ())
    options = RunOptions(
        command=command, checkpoint_id=checkpoint_id,
        durability=body.chosen_durability if thread is not None else None,
        interrupt_before=before, interrupt_after=after)
    return RunRequest(
        owner=owner, agent=agent, assistant_id=assistant_id(name),
        thread_id=thread.thread_id if thread else None, messages=messages,
        # runs/wait (not kept) answers the last state only: the modes a client names would
        # format every token and every step's state for a stream nobody reads.
        approval_id=approval_id, options=options,
        stream_modes=tuple(body.modes) if kept else (),
        multitask_strategy=body.multitask_strategy,
        on_disconnect=body.on_disconnect, grace=settings.resume_grace_seconds,
        after_seconds=body.after_seconds, kept=kept, profile=profile,
        new_thread=thread is None, metadata=body.metadata or {},
        kwargs={"stream_mode": body.modes, "stream_resumable": body.stream_resumable,
                "on_disconnect": body.on_disconnect, "durability": options.durability,
                "checkpoint_id": checkpoint_id, "interrupt_before": body.interrupt_before,
                "interrupt_after": body.interrupt_after, "command": body.command is not None})


async def _resume(platform: Platform, settings: Settings, owner: str,
                  thread: ThreadRecord | None, agent: Agent, resume: Any
                  ) -> tuple[Any, str | None]:
    """The run's resume value, and the approval it claims when it answers one (the run
    manager releases it when the run ends): checked, and bound to that interrupt."""
    claimed = None if thread is None or resume is None else await claim_resume(
        platform.approvals, platform.checkpointer, owner, thread.thread_id, resume,
        agent.tools_by_name, ttl=settings.approval_timeout_seconds)
    return (resume, None) if claimed is None else (claimed[1], claimed[0].approval_id)


async def _thread_for_run(protocol: AgentProtocol, owner: str, thread_id: str,
                          body: RunCreate) -> ThreadRecord:
    check_thread_id(thread_id)
    thread = await protocol.find_thread(owner, thread_id)
    if thread is not None:
        return thread
    if body.if_not_exists != "create":
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"Thread {thread_id!r} not found: create it first, or send "
                            "if_not_exists='create'")
    name, _agent = find_agent(protocol.platform, body.assistant_id)
    made = await protocol.store.create_thread(owner, thread_id, thread_metadata(name))
    return made or await caller_thread(protocol, owner, thread_id)


async def _start(protocol: AgentProtocol, request: RunRequest) -> tuple[RunRecord, LiveRun]:
    try:
        return await protocol.manager.create(request)
    except ThreadBusy as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, BUSY) from exc


def _where(record: RunRecord) -> str:
    if record.thread_id is None:
        return f"/runs/{record.run_id}"
    return f"/threads/{record.thread_id}/runs/{record.run_id}"


def _stream(protocol: AgentProtocol, record: RunRecord) -> EventSourceResponse:
    where = _where(record)
    return sse_response(protocol.live.follow(record.run_id),
                        headers={"Content-Location": where, "Location": f"{where}/stream"})


async def _wait(http: Request, run: LiveRun, record: RunRecord, cancel_if_gone: bool
                ) -> Response:
    headers = {"Content-Location": _where(record)}
    assert run.task is not None
    task = run.task
    if cancel_if_gone:
        async def finished() -> bool:
            await asyncio.shield(task)
            return True

        if await unless_gone(http, finished()) is None and not task.done():
            run.cancel("disconnect")  # on_disconnect="cancel": nobody waits any more
            return Response(status_code=499)
    else:
        await asyncio.shield(task)
    return Response(content=run.result or b"{}", media_type="application/json",
                    headers=headers)


# Runs on a thread

@turns.post("/threads/{thread_id}/runs/stream", response_class=EventSourceResponse)
async def stream_run(thread_id: str, body: RunCreate, protocol: ProtocolDep,
                     platform: PlatformDep, settings: SettingsDep, user: CurrentUser,
                     profile: Profile) -> EventSourceResponse:
    thread = await _thread_for_run(protocol, user.user_id, thread_id, body)
    request = await _run_request(body, protocol=protocol, platform=platform,
                                 settings=settings, owner=user.user_id, profile=profile,
                                 thread=thread, kept=True)
    record, _run = await _start(protocol, request)
    return _stream(protocol, record)


@turns.post("/threads/{thread_id}/runs/wait")
async def wait_run(thread_id: str, body: RunCreate, http: Request, protocol: ProtocolDep,
                   platform: PlatformDep, settings: SettingsDep, user: CurrentUser,
                   profile: Profile) -> Response:
    thread = await _thread_for_run(protocol, user.user_id, thread_id, body)
    request = await _run_request(body, protocol=protocol, platform=platform,
                                 settings=settings, owner=user.user_id, profile=profile,
                                 thread=thread, kept=False)
    record, run = await _start(protocol, request)
    return await _wait(http, run, record, body.on_disconnect == "cancel")


@turns.post("/threads/{thread_id}/runs")
async def create_run(thread_id: str, body: RunCreate, protocol: ProtocolDep,
                     platform: PlatformDep, settings: SettingsDep, user: CurrentUser,
                     profile: Profile, response: Response) -> dict[str, Any]:
    thread = await _thread_for_run(protocol, user.user_id, thread_id, body)
    request = await _run_request(body, protocol=protocol, platform=platform,
                                 settings=settings, owner=user.user_id, profile=profile,
                                 thread=thread, kept=True)
    request = _background(request)
    record, _run = await _start(protocol, request)
    response.headers["Content-Location"] = _where(record)
    return record.public()


def _background(request: RunRequest) -> RunRequest:
    return replace(request, on_disconnect="continue")  # nobody follows it at first


# Stateless runs: the client sends the whole conversation

async def _stateless(body: RunCreate, protocol: AgentProtocol, platform: Platform,
                     settings: Settings, owner: str, profile: Any, kept: bool
                     ) -> RunRequest:
    thread = None
    if body.on_completion == "keep":  # the run keeps a thread of its own
        name, _agent = find_agent(platform, body.assistant_id)
        thread = await protocol.store.create_thread(owner, str(uuid7()),
                                                    thread_metadata(name))
    return await _run_request(body, protocol=protocol, platform=platform, settings=settings,
                              owner=owner, profile=profile, thread=thread, kept=kept)


@turns.post("/runs/stream", response_class=EventSourceResponse)
async def stream_stateless(body: RunCreate, protocol: ProtocolDep, platform: PlatformDep,
                           settings: SettingsDep, user: CurrentUser, profile: Profile
                           ) -> EventSourceResponse:
    request = await _stateless(body, protocol, platform, settings, user.user_id, profile,
                               kept=True)
    record, _run = await _start(protocol, request)
    return _stream(protocol, record)


@turns.post("/runs/wait")
async def wait_stateless(body: RunCreate, http: Request, protocol: ProtocolDep,
                         platform: PlatformDep, settings: SettingsDep, user: CurrentUser,
                         profile: Profile) -> Response:
    request = await _stateless(body, protocol, platform, settings, user.user_id, profile,
                               kept=False)
    record, run = await _start(protocol, request)
    return await _wait(http, run, record, body.on_disconnect == "cancel")


@turns.post("/runs")
async def create_stateless(body: RunCreate, protocol: ProtocolDep, platform: PlatformDep,
                           settings: SettingsDep, user: CurrentUser, profile: Profile,
                           response: Response) -> dict[str, Any]:
    request = _background(await _stateless(body, protocol, platform, settings,
                                           user.user_id, profile, kept=True))
    record, _run = await _start(protocol, request)
    response.headers["Content-Location"] = _where(record)
    return record.public()


# Reading, following, cancelling

async def _caller_run(protocol: AgentProtocol, owner: str, thread_id: str | None,
                      run_id: str) -> RunRecord:
    if thread_id is not None:
        await caller_thread(protocol, owner, thread_id)
    record = await protocol.store.get_run(owner, run_id)
    if record is None or record.thread_id != thread_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Run {run_id!r} not found")
    if record.status in ACTIVE and not await protocol.live.alive(run_id):
        record.status = "error"  # its replica went away mid-run
    return record


@router.get("/threads/{thread_id}/runs")
async def list_runs(thread_id: str, protocol: ProtocolDep, user: CurrentUser,
                    limit: int = 10, offset: int = 0, status: str | None = None
                    ) -> list[dict[str, Any]]:
    await caller_thread(protocol, user.user_id, thread_id)
    runs = await protocol.store.list_runs(user.user_id, thread_id, limit=limit,
                                          offset=offset, status=status)
    return [r.public() for r in runs]


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(thread_id: str, run_id: str, protocol: ProtocolDep, user: CurrentUser
                  ) -> dict[str, Any]:
    return (await _caller_run(protocol, user.user_id, thread_id, run_id)).public()


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204)
async def delete_run(thread_id: str, run_id: str, protocol: ProtocolDep, user: CurrentUser
                     ) -> Response:
    record = await _caller_run(protocol, user.user_id, thread_id, run_id)
    if record.status in ACTIVE:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            "the run is still running: cancel it first")
    await protocol.store.delete_run(user.user_id, record)
    return Response(status_code=204)


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(thread_id: str, run_id: str, protocol: ProtocolDep, user: CurrentUser,
                     wait: bool = False, action: str = "interrupt") -> Response:
    if action not in ("interrupt", "rollback"):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "action must be 'interrupt' or 'rollback'")
    record = await _caller_run(protocol, user.user_id, thread_id, run_id)
    if record.status in ACTIVE:
        await protocol.live.cancel(run_id, action)
        if wait:
            await protocol.manager.wait_done(run_id)
    return Response(status_code=204 if wait else 202)


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(thread_id: str, run_id: str, protocol: ProtocolDep, user: CurrentUser
                   ) -> Response:
    await _caller_run(protocol, user.user_id, thread_id, run_id)
    local = protocol.live.local(run_id)
    await protocol.manager.wait_done(run_id)
    if local is not None and local.result is not None:
        return Response(content=local.result, media_type="application/json")
    values, _interrupts = await latest_values(protocol.platform.checkpointer, user.user_id,
                                              thread_id)
    return Response(content=dumps(values), media_type="application/json")


async def _join_stream(http: Request, protocol: AgentProtocol, owner: str,
                       thread_id: str | None, run_id: str, modes: list[str] | None
                       ) -> EventSourceResponse:
    record = await _caller_run(protocol, owner, thread_id, run_id)
    after = last_event_id(http, bool(record.kwargs.get("stream_resumable")))
    try:
        await protocol.live.check(run_id, owner)
    except NoSuchRun:
        return sse_response(nothing())  # over, and its events are no longer kept
    return sse_response(protocol.live.follow(run_id, after), keep=mode_filter(modes),
                        headers={"Content-Location": _where(record)})


@router.get("/threads/{thread_id}/runs/{run_id}/stream", response_class=EventSourceResponse)
async def join_stream(thread_id: str, run_id: str, http: Request, protocol: ProtocolDep,
                      user: CurrentUser, stream_mode: list[str] | None = None
                      ) -> EventSourceResponse:
    return await _join_stream(http, protocol, user.user_id, thread_id, run_id, stream_mode)


@router.get("/runs/{run_id}/stream", response_class=EventSourceResponse)
async def join_stateless_stream(run_id: str, http: Request, protocol: ProtocolDep,
                                user: CurrentUser, stream_mode: list[str] | None = None
                                ) -> EventSourceResponse:
    return await _join_stream(http, protocol, user.user_id, None, run_id, stream_mode)

