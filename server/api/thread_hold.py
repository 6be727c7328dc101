"""One turn at a time on a thread, whichever API starts it. Two turns on one thread at
once would both start from the same checkpoint, and the one that ends last would drop the
other's messages from the conversation. A `/chat` message, a decision or an MCP call on
a thread holds it as an Agent Protocol run does (its lease in Redis, across replicas):
another turn gets 409, and a run that chose to queue (`multitask_strategy` enqueue) takes
its turn when the thread is let go. Deleting a thread holds it too: the turn under way
would write it back when it ends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Callable
from typing import Any

from fastapi import HTTPException, status

from server.agent_protocol.service import AgentProtocol
from server.forget import ThreadForgotten, forget_thread
from server.gateway import Services
from server.platform import Platform
from server.runner import ChatEvent
from server.runner.holds import Release, release_nothing
from server.runner.own_task import settled


def busy_message(thread_id: str) -> str:
    return (f"thread {thread_id!r} is answering another message (or running a run): wait "
            "for that answer, then send yours again")


def busy_for(action: str) -> Callable[[str], str]:
    """The 409 message for `action` on a held thread other than a new message."""
    return lambda thread_id: (f"thread {thread_id!r} is answering a message (or running a "
                              f"run): stop it or wait for its end, then {action} again")


async def hold_thread(protocol: AgentProtocol | None, user_id: str, thread_id: str,
                      holder: str, *, new_thread: bool = False,
                      refused: Callable[[str], str] = busy_message) -> Release:
    """Hold the caller's thread for one turn; 409 when another turn or run holds it. A
    thread the server just named is nobody else's yet, and without Redis (no Agent
    Protocol) there is one process and nothing to hold across. The lease names the turn
    apart from any run, so a run sent with `interrupt` or `rollback` waits for a message
    being answered instead of cancelling it."""
    if protocol is None or new_thread:
        return release_nothing
    release = await protocol.manager.hold(user_id, thread_id, f"turn:{holder}")
    if release is None:
        raise HTTPException(status.HTTP_409_CONFLICT, refused(thread_id),
                            headers={"Retry-After": "1"})
    return release


async def forget_unheld_thread(*, protocol: AgentProtocol | None, platform: Platform,
                               services: Services, user_id: str, thread_id: str,
                               token: str | None) -> ThreadForgotten:
    """Forgets the thread while holding it as a turn does; 409 while a turn or run holds
    it. A turn under way writes its checkpoint, its exchange and its transcript when it
    ends, so a deletion in its middle would be undone by it."""
    release = await hold_thread(protocol, user_id, thread_id, f"delete-{uuid.uuid4().hex}",
                                refused=busy_for("delete the thread"))
    try:
        return await forget_thread(platform=platform, services=services, user_id=user_id,
                                   thread_id=thread_id, token=token)
    finally:
        await release()


async def releasing(events: AsyncGenerator[ChatEvent], *releases: Release
                    ) -> AsyncGenerator[ChatEvent]:
    """The turn's events; once they end, however they end, and the graph has stopped
    (its last checkpoint written), each of `releases` is awaited."""
    try:
        async for event in events:
            yield event
    finally:
        try:
            await events.aclose()
            await settled()
        finally:
            for release in releases:
                await release()


_releasing_later: set[asyncio.Future[None]] = set()


def release_when_done(task: asyncio.Task[Any], release: Release) -> None:
    """Release once `task` has ended, also when it was cancelled before its first step
    (then the turn's events, which release what they hold, never ran). A release that
    already happened does nothing."""
    def done(_task: asyncio.Task[Any]) -> None:
        later = asyncio.ensure_future(release())
        _releasing_later.add(later)  # a task nobody holds may be collected mid-way
        later.add_done_callback(_releasing_later.discard)

    task.add_done_callback(done)
