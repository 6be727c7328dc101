"""Threads: the caller's conversations, the same threads `/chat` keeps (one checkpointer
key, one history, one way of forgetting). Another user's thread id answers 404."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status
from langchain_core.utils.uuid import uuid7
from langgraph.errors import InvalidUpdateError

from server.agent_protocol import state as thread_state
from server.agent_protocol.service import AgentProtocol
from server.agent_protocol.store import ThreadRecord
from server.api.agent_protocol.common import no_thread, thread_body
from server.api.agent_protocol.schemas import (
    HistoryRequest,
    StateAt,
    StateUpdate,
    ThreadCount,
    ThreadCreate,
    ThreadPatch,
    ThreadSearch,
)
from server.api.chat import check_thread_id
from server.api.deps import AccessToken, CurrentUser, PlatformDep, ProtocolDep, ServicesDep
from server.api.thread_hold import busy_for, forget_unheld_thread, hold_thread
from server.platform import Platform

router = APIRouter(tags=["agent protocol"])


async def caller_thread(protocol: AgentProtocol, user_id: str, thread_id: str
                        ) -> ThreadRecord:
    check_thread_id(thread_id)
    thread = await protocol.find_thread(user_id, thread_id)
    if thread is None:
        raise no_thread(thread_id)
    return thread


def graph_of(platform: Platform, thread: ThreadRecord) -> Any:
    """The graph whose state a thread holds: its agent's (every agent's state has the
    same shape, so a thread of an agent since removed reads through another)."""
    agent = platform.agents.get(str(thread.metadata.get("graph_id"))) \
        or next(iter(platform.agents.values()))
    return agent.graph


async def _with_values(protocol: AgentProtocol, user_id: str, thread: ThreadRecord
                       ) -> dict[str, Any]:
    values, interrupts = await thread_state.latest_values(protocol.platform.checkpointer,
                                                          user_id, thread.thread_id)
    return thread_body(thread, values, interrupts)


@router.post("/threads")
async def create_thread(body: ThreadCreate, protocol: ProtocolDep, user: CurrentUser
                        ) -> dict[str, Any]:
    thread_id = body.thread_id or str(uuid7())
    made = await protocol.store.create_thread(user.user_id, thread_id, body.metadata)
    if made is not None:
        return thread_body(made)
    existing = await protocol.find_thread(user.user_id, thread_id)
    if body.if_exists == "do_nothing" and existing is not None:
        return await _with_values(protocol, user.user_id, existing)
    raise HTTPException(status.HTTP_409_CONFLICT,
                        f"thread {thread_id!r} exists: choose another id, or send "
                        "if_exists='do_nothing' to get it")


@router.post("/threads/search")
async def search_threads(body: ThreadSearch, protocol: ProtocolDep, user: CurrentUser
                         ) -> list[dict[str, Any]]:
    found = await protocol.store.search_threads(
        user.user_id, metadata=body.metadata, status=body.status, ids=body.ids,
        sort_by=body.sort_by, descending=body.sort_order == "desc", limit=body.limit,
        offset=body.offset)
    wants_values = body.select is None or "values" in body.select \
        or "interrupts" in body.select
    if wants_values:
        threads = list(await asyncio.gather(*[_with_values(protocol, user.user_id, t)
                                              for t in found]))
    else:
        threads = [thread_body(t) for t in found]
    if body.select:
        threads = [{k: v for k, v in t.items() if k in body.select} for t in threads]
    return threads


@router.post("/threads/count")
async def count_threads(body: ThreadCount, protocol: ProtocolDep, user: CurrentUser) -> int:
    return len(await protocol.store.search_threads(user.user_id, metadata=body.metadata,
                                                   status=body.status, limit=10**9))


@router.get("/threads/{thread_id}")
async def get_thread(thread_id: str, protocol: ProtocolDep, user: CurrentUser
                     ) -> dict[str, Any]:
    thread = await caller_thread(protocol, user.user_id, thread_id)
    return await _with_values(protocol, user.user_id, thread)


@router.patch("/threads/{thread_id}")
async def patch_thread(thread_id: str, body: ThreadPatch, protocol: ProtocolDep,
                       user: CurrentUser) -> dict[str, Any]:
    await caller_thread(protocol, user.user_id, thread_id)
    patched = await protocol.store.patch_thread(user.user_id, thread_id, body.metadata)
    if patched is None:
        raise no_thread(thread_id)
    return thread_body(patched)


@router.delete("/threads/{thread_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_thread(thread_id: str, protocol: ProtocolDep, platform: PlatformDep,
                        services: ServicesDep, user: CurrentUser, token: AccessToken
                        ) -> Response:
    """Forgets the thread as `DELETE /chat/threads/{id}` does: its state, its transcript,
    what memory took from it, and here its runs (cancelled if they still run)."""
    await caller_thread(protocol, user.user_id, thread_id)
    running = [run.run_id for run in await protocol.store.list_runs(
        user.user_id, thread_id, limit=10**6) if run.status in ("pending", "running")]
    for run_id in running:
        await protocol.live.cancel(run_id, "interrupt")
    for run_id in running:  # stopped before anything goes: nothing writes behind it
        await protocol.manager.wait_done(run_id)
    # A `/chat` message being answered is not a run: 409 until its answer is written.
    await forget_unheld_thread(protocol=protocol, platform=platform, services=services,
                               user_id=user.user_id, thread_id=thread_id, token=token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/threads/{thread_id}/state")
async def get_state(thread_id: str, protocol: ProtocolDep, user: CurrentUser
                    ) -> dict[str, Any]:
    thread = await caller_thread(protocol, user.user_id, thread_id)
    got = await thread_state.get_state(graph_of(protocol.platform, thread), user.user_id,
                                       thread_id)
    assert got is not None  # the latest state always answers
    return got


async def _state_at(protocol: AgentProtocol, user_id: str, thread_id: str,
                    checkpoint_id: str | None) -> dict[str, Any]:
    thread = await caller_thread(protocol, user_id, thread_id)
    got = await thread_state.get_state(graph_of(protocol.platform, thread), user_id,
                                       thread_id, checkpoint_id)
    if got is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"checkpoint {checkpoint_id!r} of "
                            f"thread {thread_id!r} is not kept (a thread keeps its "
                            "PARLEY_THREAD_CHECKPOINTS latest)")
    return got


@router.get("/threads/{thread_id}/state/{checkpoint_id}")
async def get_state_at(thread_id: str, checkpoint_id: str, protocol: ProtocolDep,
                       user: CurrentUser) -> dict[str, Any]:
    return await _state_at(protocol, user.user_id, thread_id, checkpoint_id)


@router.post("/threads/{thread_id}/state/checkpoint")
async def post_state_at(thread_id: str, body: StateAt, protocol: ProtocolDep,
                        user: CurrentUser) -> dict[str, Any]:
    return await _state_at(protocol, user.user_id, thread_id, body.checkpoint.checkpoint_id)


@router.post("/threads/{thread_id}/state")
async def update_state(thread_id: str, body: StateUpdate, protocol: ProtocolDep,
                       user: CurrentUser) -> dict[str, Any]:
    thread = await caller_thread(protocol, user.user_id, thread_id)
    graph = graph_of(protocol.platform, thread)
    if body.as_node is not None and body.as_node not in graph.nodes:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"as_node {body.as_node!r} is not a node of the graph: choose "
                            f"from {', '.join(n for n in graph.nodes if n != '__start__')}")
    # A turn under way would write its own checkpoint over the update when it ends.
    release = await hold_thread(protocol, user.user_id, thread_id, f"state-{uuid7()}",
                                refused=busy_for("update its state"))
    try:
        updated = await thread_state.update_state(
            graph, user.user_id, thread_id, body.values, as_node=body.as_node,
            checkpoint_id=body.wanted_checkpoint)
    except (ValueError, InvalidUpdateError) as exc:  # LangGraph's own refusals
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    finally:
        await release()
    await protocol.store.touch_thread(user.user_id, thread_id, metadata=thread.metadata)
    return updated


@router.post("/threads/{thread_id}/history")
async def get_history(thread_id: str, body: HistoryRequest, protocol: ProtocolDep,
                      user: CurrentUser) -> list[dict[str, Any]]:
    thread = await caller_thread(protocol, user.user_id, thread_id)
    return await thread_state.get_history(
        graph_of(protocol.platform, thread), user.user_id, thread_id, limit=body.limit,
        before=body.before_id, metadata=body.metadata,
        checkpoint_id=body.checkpoint.checkpoint_id if body.checkpoint else None)


@router.get("/threads/{thread_id}/history")
async def get_history_plain(thread_id: str, protocol: ProtocolDep, user: CurrentUser,
                            limit: Annotated[int, Query(ge=1, le=1000)] = 10,
                            before: str | None = None) -> list[dict[str, Any]]:
    return await get_history(thread_id, HistoryRequest(limit=limit, before=before),
                             protocol, user)
