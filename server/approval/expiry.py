"""Approvals that nobody decided in time: when a run pauses for one, its expiry is noted
(the runner's pause hook); a task of each replica resumes the threads whose time is up,
with no decision, so the graph rejects the calls as expired, the model is told and the
turn ends as any other (stored in history). A replica takes each expiry alone."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager
from datetime import datetime
from typing import Any

from langgraph.types import Command

from graphs.context import TurnContext
from server.approval.claims import Taken, bound, take
from server.approval.pending import find_pending, from_interrupts
from server.approval.store import ApprovalStore
from server.platform import Platform
from server.runner import Runner, RunOptions
from server.runner.runner import PauseHook

log = logging.getLogger(__name__)


def note_expiry(store: ApprovalStore) -> PauseHook:
    async def paused(ctx: TurnContext, interrupts: Sequence[Any]) -> None:
        pending = from_interrupts(interrupts)
        if pending is None:
            return
        at = datetime.fromisoformat(str(pending.request["expires_at"])).timestamp()
        await store.expire_at({"user_id": ctx.user_id, "thread_id": ctx.thread_id,
                               "approval_id": pending.id}, at)

    return paused


async def expire_due(platform: Platform, runner: Runner, now: float | None = None) -> int:
    """Resume the threads whose approval expired; how many were."""
    expired = 0
    for entry in await platform.approvals.due(time.time() if now is None else now):
        user_id, thread_id = entry["user_id"], entry["thread_id"]
        pending = await find_pending(platform.checkpointer, user_id, thread_id)
        agent = platform.agents.get(pending.agent) if pending is not None else None
        if pending is None or pending.id != entry["approval_id"] or agent is None:
            continue  # decided in time, or the user wrote again
        try:
            claim = await take(platform.approvals, platform.checkpointer, user_id,
                               thread_id, pending,
                               ttl=platform.settings.approval_timeout_seconds)
        except Taken:
            continue  # a decision is running right now
        try:
            ctx = TurnContext(user_id=user_id, thread_id=thread_id, agent=agent.spec.name,
                              turn_id=str(pending.request.get("turn_id") or ""))
            events = runner.stream(agent.graph, ctx, None, tokens=False, options=RunOptions(
                command=Command(resume=bound(pending, {"decisions": []}))))
            async with aclosing(events):
                async for _event in events:
                    pass
        finally:
            await claim.release()  # the run has ended: the claim need not outlive it
        expired += 1
    return expired


@asynccontextmanager
async def expiring(platform: Platform, runner: Runner, *, every: float
                   ) -> AsyncIterator[None]:
    """Look for expired approvals every `every` seconds while the block runs."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await expire_due(platform, runner)
            except Exception:  # the next round tries again; a turn's failure is logged
                log.warning("expiring approvals failed", exc_info=True)

    task = asyncio.create_task(loop(), name="approval-expiry")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
