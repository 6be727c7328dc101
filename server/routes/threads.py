"""`DELETE /chat/threads/{thread_id}`: forget a conversation everywhere the platform keeps
it: the thread's state in Redis (the agent would otherwise go on with it), its stored
transcript in the history service, and the exchanges long-term memory took from it.
Facts the user told the agent there stay in `/memories` (they are about the user, not
the thread), as a deleted chat keeps saved memories elsewhere."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel

from server.deps import CurrentUser, PlatformDep
from server.routes.chat import THREAD_ID
from server.turns import checkpoint_thread

router = APIRouter(prefix="/chat/threads", tags=["chat"])


class ThreadDeleted(BaseModel):
    thread_id: str
    state: bool  # the thread's short-term memory was there and is gone
    history: bool  # its stored transcript was there and is gone
    memories: int  # exchanges removed from long-term memory


@router.delete("/{thread_id}", response_model=ThreadDeleted)
async def delete_thread(thread_id: str, request: Request, platform: PlatformDep,
                        user: CurrentUser) -> ThreadDeleted:
    if not THREAD_ID.fullmatch(thread_id):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "thread_id must be 1-128 letters, digits or '_.:-'")
    key = {"configurable": {"thread_id": checkpoint_thread(user.user_id, thread_id),
                            "checkpoint_ns": ""}}
    state = await platform.checkpointer.aget_tuple(key) is not None  # type: ignore[arg-type]
    if state:
        await platform.checkpointer.adelete_thread(checkpoint_thread(user.user_id, thread_id))
    history = await _delete_history(request, thread_id)
    memories = await _delete_exchanges(platform.memory, user.user_id, thread_id)
    if not (state or history or memories):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no thread {thread_id!r}")
    return ThreadDeleted(thread_id=thread_id, state=state, history=history,
                         memories=memories)


async def _delete_history(request: Request, thread_id: str) -> bool:
    """Through the history service's own API, as the caller: it checks the owner itself."""
    services = getattr(request.app.state, "services", None)
    token = getattr(request.state, "access_token", None)
    if services is None or services.verifier is None or token is None:
        return False  # auth is off: there is no history service
    async with services.history_client(request.app) as client:
        response = await client.delete(f"/history/threads/{thread_id}",
                                       headers={"Authorization": f"Bearer {token}"})
    if response.status_code == 404:
        return False
    if response.status_code != 204:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY,
                            f"the history service refused the deletion "
                            f"({response.status_code}); the thread's state is already gone, "
                            "try again to delete its transcript")
    return True


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
