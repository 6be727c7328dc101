"""Approvals that nobody decided in time: when a run pauses for one, its expiry is noted
(the runner's pause hook); a task of each replica resumes the threads whose time is up,
with no decision, so the graph rejects the calls as expired, the model is told and the
turn ends as any other (stored in history). A replica takes each expiry alone."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
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
from server.runner import Runner, RunOptions, went_on
from server.runner.holds import HoldThread, hold_nothing
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


BATCH = 50  # expiries taken from the store at a time


async def expire_due(platform: Platform, runner: Runner, now: float | None = None, *,
                     retry_in: float = 30.0, hold: HoldThread = hold_nothing) -> int:
    """Resume the threads whose approval expired; how many were. One that cannot be
    expired now (its claim is held, its run failed, a store did not answer) is tried
    again `retry_in` seconds later, never dropped."""
    now = time.time() if now is None else now
    expired = 0
    while True:
        entries = await platform.approvals.due(now, BATCH)
        for entry in entries:
            try:
                done = await _expire_one(platform, runner, entry, hold)
            except Exception:
                log.warning("expiring approval %s failed; trying again in %s s",
                            entry.get("approval_id"), retry_in, exc_info=True)
                done = False
            if done:
                expired += 1
            elif done is False:
                await platform.approvals.expire_at(entry, now + retry_in)
        if len(entries) < BATCH:  # a backlog is worked off in this round, not the next
            return expired


async def _expire_one(platform: Platform, runner: Runner, entry: dict[str, str],
                      hold: HoldThread = hold_nothing) -> bool | None:
    """True: the thread went on with the calls rejected as expired. False: not now, try
    again. None: nothing to do (decided in time, the user wrote again, agent gone)."""
    user_id, thread_id = entry["user_id"], entry["thread_id"]
    pending = await find_pending(platform.checkpointer, user_id, thread_id)
    if pending is None or pending.id != entry["approval_id"]:
        return None
    agent = platform.agents.get(pending.agent)
    if agent is None:
        log.warning("approval %s cannot expire: agent %r is gone", pending.id, pending.agent)
        return None
    try:
        claim = await take(platform.approvals, platform.checkpointer, user_id, thread_id,
                           pending, ttl=platform.settings.approval_timeout_seconds)
    except Taken:
        return False  # a decision runs right now; if it fails, the approval still expires
    moved = False
    release = None
    try:
        release = await hold(user_id, thread_id, uuid.uuid4().hex)
        if release is None:
            return False  # the user wrote again just now: that turn settles the calls
        ctx = TurnContext(user_id=user_id, thread_id=thread_id, agent=agent.spec.name,
                          turn_id=str(pending.request.get("turn_id") or ""))
        events = runner.stream(agent.graph, ctx, None, tokens=False, options=RunOptions(
            command=Command(resume=bound(pending, {"decisions": []}))))
        async with aclosing(events):
            async for event in events:
                moved = moved or went_on(event)
    finally:
        if release is not None:
            await release()
        await claim.release()
    return moved


@asynccontextmanager
async def expiring(platform: Platform, runner: Runner, *, every: float,
                   hold: HoldThread | None = None) -> AsyncIterator[None]:
    """Look for expired approvals every `every` seconds while the block runs."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await expire_due(platform, runner, retry_in=every,
                                 hold=hold or hold_nothing)
            except Exception:  # the next round tries again; a turn's failure is logged
                log.warning("expiring approvals failed", exc_info=True)

    task = asyncio.create_task(loop(), name="approval-expiry")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
