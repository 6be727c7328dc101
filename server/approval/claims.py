"""Who may resume a pending approval: one decision at a time, whichever API it comes from
(`/chat`, the Agent Protocol, the expiry sweep), so two sent at once cannot both run the
calls. The one that takes the claim holds it for as long as its run lasts and releases
it when the run ends (or never starts); the resume names the approval's interrupt id, so
even a decision that outlived its claim answers nothing but the approval it was checked
against (LangGraph gives a resume map's value only to the interrupt it names)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver

from server.approval.decisions import check_decisions
from server.approval.pending import Pending, find_pending
from server.approval.store import ApprovalStore

INTERRUPT_ID = re.compile(r"[0-9a-f]{32}")  # what LangGraph takes for a resume map's keys


class Taken(Exception):
    """Another decision on this approval runs, or ran: the API answers 409."""


@dataclass
class Claim:
    store: ApprovalStore
    user_id: str
    approval_id: str
    _released: bool = field(default=False, repr=False)

    async def release(self, *, keep_decisions: bool = False) -> None:
        """Once the run has ended, or will never start (then `keep_decisions`); a second
        call does nothing."""
        if not self._released:
            self._released = True
            await self.store.release(self.user_id, self.approval_id,
                                     keep_decisions=keep_decisions)


async def take(store: ApprovalStore, checkpointer: BaseCheckpointSaver, user_id: str,
               thread_id: str, pending: Pending, *, ttl: float) -> Claim:
    """The claim on `pending`, or Taken. The thread is read again once the claim is
    held: a decision that held it until its run ended has settled the approval."""
    if not await store.claim(user_id, pending.id, ttl):
        raise Taken(f"the tool approval {pending.id!r} of thread {thread_id!r} is being "
                    "decided by another request: wait for it to end, then GET "
                    f"/chat/threads/{thread_id}/approval")
    claim = Claim(store, user_id, pending.id)
    current = await find_pending(checkpointer, user_id, thread_id)
    if current is None or current.id != pending.id:
        await claim.release()
        raise Taken(f"the tool approval {pending.id!r} of thread {thread_id!r} was just "
                    "decided by another request"
                    + (f"; {current.id!r} waits now" if current is not None else ""))
    return claim


def bound(pending: Pending, value: Any) -> dict[str, Any]:
    """A resume that answers `pending` only: keyed by its interrupt id."""
    return {pending.id: value}


def _addressed(resume: Any) -> bool:
    return isinstance(resume, Mapping) and bool(resume) and all(
        isinstance(k, str) and INTERRUPT_ID.fullmatch(k) for k in resume)


async def claim_resume(store: ApprovalStore, checkpointer: BaseCheckpointSaver, owner: str,
                       thread_id: str, resume: Any, tools: Mapping[str, BaseTool], *,
                       ttl: float) -> tuple[Claim, dict[str, Any]] | None:
    """An Agent Protocol resume that answers the thread's tool approval: checked
    (Refused: 422), claimed (Taken: 409) and bound to the approval's interrupt id. None
    when no approval waits (the resume is then the client's own business)."""
    pending = await find_pending(checkpointer, owner, thread_id)
    if pending is None:
        return None
    value = resume
    if _addressed(resume):  # the client named the interrupt it answers
        if pending.id not in resume:
            raise Taken(f"interrupt {', '.join(map(repr, resume))} no longer waits on "
                        f"thread {thread_id!r}: {pending.id!r} does (GET its state)")
        value = resume[pending.id]
    check_decisions(value, pending, tools)
    claim = await take(store, checkpointer, owner, thread_id, pending, ttl=ttl)
    return claim, bound(pending, value)
