"""A plain (non-streamed) request whose client goes away stops its turn. The server does
not cancel a plain request's handler when its client leaves, and clients send the request
again after a timeout: without this, each retry would run the whole turn (its tools too)
once more, all at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

from fastapi import Request

T = TypeVar("T")

GONE_CHECK_SECONDS = 0.5


async def unless_gone(request: Request, work: Coroutine[Any, Any, T]) -> T | None:
    """`work`'s result, or None once the client has disconnected, `work` cancelled."""
    task = asyncio.ensure_future(work)
    try:
        while not (await asyncio.wait({task}, timeout=GONE_CHECK_SECONDS))[0]:
            if await request.is_disconnected():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                return None
        return task.result()
    finally:
        task.cancel()  # the handler itself cancelled: the run goes too
