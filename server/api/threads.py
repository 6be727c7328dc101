"""`DELETE /chat/threads/{thread_id}`: forget a conversation everywhere the platform keeps
it (server/forget.py), never while a turn is under way on it."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel

from server.api.chat import check_thread_id
from server.api.deps import AccessToken, CurrentUser, MaybeProtocol, PlatformDep, ServicesDep
from server.api.thread_hold import forget_unheld_thread

router = APIRouter(prefix="/chat/threads", tags=["chat"])


class ThreadDeleted(BaseModel):
    thread_id: str
    state: bool  # the thread's short-term memory was there and is gone
    memories: int  # exchanges removed from long-term memory
    transcript: bool  # the transcript's deletion is queued for the history service


@router.delete("/{thread_id}", response_model=ThreadDeleted)
async def delete_thread(thread_id: str, platform: PlatformDep, services: ServicesDep,
                        protocol: MaybeProtocol, user: CurrentUser, token: AccessToken
                        ) -> ThreadDeleted:
    check_thread_id(thread_id)
    forgotten = await forget_unheld_thread(protocol=protocol, platform=platform,
                                           services=services, user_id=user.user_id,
                                           thread_id=thread_id, token=token)
    if not forgotten.known:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no thread {thread_id!r}")
    return ThreadDeleted(thread_id=thread_id, state=forgotten.state,
                         memories=forgotten.memories, transcript=forgotten.transcript)
