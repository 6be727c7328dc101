"""Forgetting a conversation everywhere the platform keeps it: the thread's state in the
checkpointer (the agent would otherwise go on with it), the exchanges long-term memory
took from it, its stored transcript, and its Agent Protocol record and runs. The
transcript's deletion goes down the turn stream, behind any turn of the thread still on
its way to the history service, so no such turn can bring the thread back. Facts the
user told the agent there stay in long-term memory (they are about the user, not the
thread), as a deleted chat keeps saved memories elsewhere."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from graphs.context import thread_config, thread_key
from server.agent_protocol.store import Store
from server.gateway import Services
from server.live.runs import log_key
from server.platform import Platform
from services.history.schemas import ThreadDeletion
from services.history.stream import (
    deletion_queued,
    mark_deletion_queued,
    publish_thread_deletion,
)


@dataclass(frozen=True)
class ThreadForgotten:
    thread_id: str
    state: bool  # the thread's short-term memory was there and is gone
    memories: int  # exchanges removed from long-term memory
    transcript: bool  # the transcript's deletion is queued for the history service
    known: bool  # there was anything of the thread anywhere (else: no such thread)


async def forget_thread(*, platform: Platform, services: Services, user_id: str,
                        thread_id: str, token: str | None) -> ThreadForgotten:
    # Asked before anything changes. A transcript whose deletion is queued counts as gone:
    # deleting twice in a row must not find the thread again.
    queued = await deletion_queued(platform.redis, user_id, thread_id)
    stored = False if queued else await _history_has(services, thread_id, token)
    state = await platform.checkpointer.aget_tuple(thread_config(user_id, thread_id)) \
        is not None
    if state:
        await platform.checkpointer.adelete_thread(thread_key(user_id, thread_id))
    memories = await _delete_exchanges(platform.memory, user_id, thread_id)
    recorded = await _delete_records(platform.redis, user_id, thread_id)
    transcript = False
    if platform.redis is not None and platform.settings.auth_enabled:  # history is kept
        await publish_thread_deletion(platform.redis, ThreadDeletion(
            event_id=uuid.uuid4().hex, user_id=user_id, thread_id=thread_id),
            stream=platform.settings.turn_stream)
        await mark_deletion_queued(platform.redis, user_id, thread_id,
                                   seconds=DELETION_KEPT_SECONDS)
        transcript = True
    # A thread with a state has its turns on their way to history, if not there yet.
    return ThreadForgotten(thread_id=thread_id, state=state, memories=memories,
                           transcript=transcript,
                           known=bool(state or memories or stored or recorded))


# How long a queued transcript deletion is remembered: far longer than the history
# consumer takes to apply it, unless the history service is down that long.
DELETION_KEPT_SECONDS = 3600


async def _history_has(services: Services, thread_id: str, token: str | None) -> bool | None:
    """Whether the history service holds the caller's thread; None when it cannot tell
    (no history service here, or it does not answer): then the thread may exist."""
    if services.verifier is None or token is None:
        return False  # auth is off: there is no history service
    if services.history is None and not services.settings.history_url:
        return None
    try:
        async with services.history_client() as client:
            response = await client.get("/history", params={"thread_id": thread_id,
                                                            "limit": 1},
                                        headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError:
        return None
    return True if response.status_code == 200 else False if \
        response.status_code == 404 else None


async def _delete_records(redis: Any, user_id: str, thread_id: str) -> bool:
    """The thread's Agent Protocol record, its runs and their kept events; whether it had
    a record."""
    if redis is None:
        return False
    store = Store(redis, ttl=0)
    recorded = await store.get_thread(user_id, thread_id) is not None
    runs = await store.delete_thread(user_id, thread_id)
    if runs:
        await redis.delete(*[log_key(run_id) for run_id in runs])
    return recorded


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
