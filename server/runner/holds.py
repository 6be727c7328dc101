"""The shape of a thread hold, shared by every part that starts a turn on a kept thread
(the HTTP API, the expiry of approvals, the Agent Protocol's lanes): one turn at a time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

Release = Callable[[], Awaitable[None]]
# Holds a user's thread for a turn (owner, thread, holder): its release, or None while
# another turn or run holds the thread.
HoldThread = Callable[[str, str, str], Awaitable[Release | None]]


async def release_nothing() -> None:
    return None


async def hold_nothing(_owner: str, _thread_id: str, _holder: str) -> Release | None:
    """For a platform with nothing to hold threads with (no Agent Protocol lanes)."""
    return release_nothing
