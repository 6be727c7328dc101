"""`DELETE /chat/threads/{thread_id}`: forget a conversation everywhere the platform keeps
it: the thread's state in Redis (the agent would otherwise go on with it), the exchanges
long-term memory took from it, and its stored transcript. The transcript's deletion goes
down the turn stream, behind any turn of the thread still on its way to the history
service, so no such turn can bring the thread back. Facts the user told the agent there
stay in `/memories` (they are about the user, not the thread), as a deleted chat keeps
saved memories elsewhere."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel

from server.deps import CurrentUser, PlatformDep
from server.routes.chat import THREAD_ID
from server.turns import checkpoint_thread
from services.history.schemas import ThreadDeletion
from services.history.stream import publish_thread_deletion

router = APIRouter(prefix="/chat/threads", tags=["chat"])


class ThreadDeleted(BaseModel):
    thread_id: str
    state: bool  # the thread's short-term memory was there and is gone
    memories: int  # exchanges removed from long-term memory
    transcript: bool  # the transcript's deletion is queued for the history service


@router.delete("/{thread_id}", response_model=ThreadDeleted)
async def delete_thread(thread_id: str, request: Request, platform: PlatformDep,
                        user: CurrentUser) -> ThreadDeleted:
    if not THREAD_ID.fullmatch(thread_id):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "thread_id must be 1-128 letters, digits or '_.:-'")
    stored = await _history_has(request, thread_id)  # asked before anything changes
    key = {"configurable": {"thread_id": checkpoint_thread(user.user_id, thread_id),
                            "checkpoint_ns": ""}}
    state = await platform.checkpointer.aget_tuple(key) is not None  # type: ignore[arg-type]
    if state:
        await platform.checkpointer.adelete_thread(checkpoint_thread(user.user_id, thread_id))
    memories = await _delete_exchanges(platform.memory, user.user_id, thread_id)
    transcript = False
    if platform.redis is not None and platform.settings.auth_enabled:  # history is kept
        await publish_thread_deletion(platform.redis, ThreadDeletion(
            event_id=uuid.uuid4().hex, user_id=user.user_id, thread_id=thread_id),
            stream=platform.settings.turn_stream)
        transcript = True
    # A thread with a state has its turns on their way to history, if not there yet.
    if not (state or memories or stored):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no thread {thread_id!r}")
    return ThreadDeleted(thread_id=thread_id, state=state, memories=memories,
                         transcript=transcript)


async def _history_has(request: Request, thread_id: str) -> bool | None:
    """Whether the history service holds the caller's thread; None when it cannot tell
    (no history service here, or it does not answer): then the thread may exist."""
    services = getattr(request.app.state, "services", None)
    token = getattr(request.state, "access_token", None)
    if services is None or services.verifier is None or token is None:
        return False  # auth is off: there is no history service
    if services.history is None and not services.settings.history_url:
        return None
    try:
        async with services.history_client(request.app) as client:
            response = await client.get("/history", params={"thread_id": thread_id,
                                                            "limit": 1},
                                        headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError:
        return None
    return True if response.status_code == 200 else False if \
        response.status_code == 404 else None


async def _delete_exchanges(memory: Any, user_id: str, thread_id: str) -> int:
    if memory is None:
        return 0
    found, offset, page = [], 0, 500
    while True:
        records = await memory.list(user_id, limit=page, offset=offset)
        found += [r.id for r in records if r.metadata.get("thread_id") == thread_id
                  and r.metadata.get("kind") == "exchange"]
        if len(records) < page:
            break
        offset += page
    for memory_id in found:
        await memory.delete(user_id, memory_id)
    return len(found)
