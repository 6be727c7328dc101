"""What tool approval keeps per user, in Redis (the same Redis as the threads, so it
outlives a restart as they do), or in this process when there is none:

- the tools a user always allows (a set per user, until they revoke it);
- decisions on some of a paused step's calls, until the last one comes (one by one): a
  hash with a field per call, so decisions sent at the same time merge instead of
  overwriting each other;
- a claim on a pending approval while its decision runs, so two decisions sent at once
  cannot both resume the run (and run the tool twice);
- the approvals to expire, by time.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Protocol

log = logging.getLogger(__name__)

_PREFIX = "parley:approval"
_EXPIRING = f"{_PREFIX}:expiring"  # a sorted set of pending approvals by expiry time
ENTRY_KEYS = ("approval_id", "thread_id", "user_id")  # an expiry entry's fields

Decided = dict[str, dict[str, Any]]  # call id -> its decision, as the graph takes it


class ApprovalStore(Protocol):
    async def always_allowed(self, user_id: str) -> set[str]: ...
    async def allow(self, user_id: str, tool: str) -> None: ...
    async def revoke(self, user_id: str, tool: str) -> bool: ...
    async def decided(self, user_id: str, approval_id: str) -> Decided: ...
    async def add_decisions(self, user_id: str, approval_id: str, decided: Decided,
                            ttl: float) -> Decided: ...
    async def claim(self, user_id: str, approval_id: str, ttl: float) -> bool: ...
    async def release(self, user_id: str, approval_id: str, *,
                      keep_decisions: bool = False) -> None: ...
    async def expire_at(self, entry: dict[str, str], at: float) -> None: ...
    async def due(self, now: float, limit: int) -> list[dict[str, str]]: ...


def approval_store(redis: Any) -> ApprovalStore:
    return RedisApprovalStore(redis) if redis is not None else MemoryApprovalStore()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry(member: Any) -> dict[str, str] | None:
    """An expiry entry as kept; None for one this code cannot read (dropped, not retried)."""
    try:
        entry = json.loads(member)
    except ValueError:
        entry = None
    if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str)
                                              for k in ENTRY_KEYS):
        log.warning("dropping an unreadable approval expiry entry: %r", member)
        return None
    return {k: entry[k] for k in ENTRY_KEYS}


class RedisApprovalStore:
    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def always_allowed(self, user_id: str) -> set[str]:
        members = await self.redis.smembers(f"{_PREFIX}:allowed:{user_id}")
        return {_text(m) for m in members}

    async def allow(self, user_id: str, tool: str) -> None:
        await self.redis.sadd(f"{_PREFIX}:allowed:{user_id}", tool)

    async def revoke(self, user_id: str, tool: str) -> bool:
        return bool(await self.redis.srem(f"{_PREFIX}:allowed:{user_id}", tool))

    async def decided(self, user_id: str, approval_id: str) -> Decided:
        everything = await self.redis.hgetall(f"{_PREFIX}:partial:{user_id}:{approval_id}")
        return {_text(c): json.loads(d) for c, d in everything.items()}

    async def add_decisions(self, user_id: str, approval_id: str, decided: Decided,
                            ttl: float) -> Decided:
        """Merge `decided` into the approval's decisions and read them all back in one
        transaction: of two requests deciding different calls at once, the later sees
        both, so the step is found complete once and not lost."""
        key = f"{_PREFIX}:partial:{user_id}:{approval_id}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={c: json.dumps(d) for c, d in decided.items()})
            pipe.pexpire(key, max(1, int(ttl * 1000)))
            pipe.hgetall(key)
            *_, everything = await pipe.execute()
        return {_text(c): json.loads(d) for c, d in everything.items()}

    async def claim(self, user_id: str, approval_id: str, ttl: float) -> bool:
        return bool(await self.redis.set(f"{_PREFIX}:claim:{user_id}:{approval_id}", "1",
                                         nx=True, px=max(1, int(ttl * 1000))))

    async def release(self, user_id: str, approval_id: str, *,
                      keep_decisions: bool = False) -> None:
        """The decision's run has ended: its claim goes, and so do the decisions it took
        (the checkpoint holds what they did). A run that never began keeps them, for the
        same decision sent again."""
        keys = [f"{_PREFIX}:claim:{user_id}:{approval_id}"]
        if not keep_decisions:
            keys.append(f"{_PREFIX}:partial:{user_id}:{approval_id}")
        await self.redis.delete(*keys)

    async def expire_at(self, entry: dict[str, str], at: float) -> None:
        await self.redis.zadd(_EXPIRING, {json.dumps(entry, sort_keys=True): at})

    async def due(self, now: float, limit: int) -> list[dict[str, str]]:
        """Up to `limit` approvals past their time, each taken by one replica only: read
        and removed by one script, so two replicas never take the same one, in one round
        trip whatever their number."""
        taken = await self.redis.eval(_TAKE_DUE, 1, _EXPIRING, repr(now), limit)
        return [entry for member in taken if (entry := _entry(member)) is not None]


# KEYS[1]: the sorted set; ARGV: now, how many at most. The due members, removed.
_TAKE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
"""


class MemoryApprovalStore:
    """For a server without Redis, whose threads live in this process too."""

    def __init__(self) -> None:
        self.allowed: dict[str, set[str]] = {}
        self.partials: dict[tuple[str, str], Decided] = {}
        self.claims: dict[tuple[str, str], float] = {}
        self.expiring: list[tuple[float, dict[str, str]]] = []

    async def always_allowed(self, user_id: str) -> set[str]:
        return set(self.allowed.get(user_id, ()))

    async def allow(self, user_id: str, tool: str) -> None:
        self.allowed.setdefault(user_id, set()).add(tool)

    async def revoke(self, user_id: str, tool: str) -> bool:
        tools = self.allowed.get(user_id, set())
        known = tool in tools
        tools.discard(tool)
        return known

    async def decided(self, user_id: str, approval_id: str) -> Decided:
        return dict(self.partials.get((user_id, approval_id), {}))

    async def add_decisions(self, user_id: str, approval_id: str, decided: Decided,
                            ttl: float) -> Decided:
        merged = self.partials.setdefault((user_id, approval_id), {})
        merged.update(decided)
        return dict(merged)

    async def claim(self, user_id: str, approval_id: str, ttl: float) -> bool:
        key = (user_id, approval_id)
        if self.claims.get(key, 0.0) > time.monotonic():
            return False
        self.claims[key] = time.monotonic() + ttl
        return True

    async def release(self, user_id: str, approval_id: str, *,
                      keep_decisions: bool = False) -> None:
        self.claims.pop((user_id, approval_id), None)
        if not keep_decisions:
            self.partials.pop((user_id, approval_id), None)

    async def expire_at(self, entry: dict[str, str], at: float) -> None:
        self.expiring = [(a, e) for a, e in self.expiring if e != entry] + [(at, entry)]

    async def due(self, now: float, limit: int) -> list[dict[str, str]]:
        ordered = sorted(self.expiring, key=lambda item: item[0])
        taken = [entry for at, entry in ordered if at <= now][:limit]
        self.expiring = [(at, entry) for at, entry in ordered if entry not in taken]
        return taken
