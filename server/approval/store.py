"""What tool approval keeps per user, in Redis (the same Redis as the threads, so it
outlives a restart as they do), or in this process when there is none:

- the tools a user always allows (a set per user, until they revoke it);
- decisions on some of a paused step's calls, until the last one comes (one by one);
- a claim on a pending approval while its decision runs, so two decisions sent at once
  cannot both resume the run (and run the tool twice).
"""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

_PREFIX = "parley:approval"
_EXPIRING = f"{_PREFIX}:expiring"  # a sorted set of pending approvals by expiry time


class ApprovalStore(Protocol):
    async def always_allowed(self, user_id: str) -> set[str]: ...
    async def allow(self, user_id: str, tool: str) -> None: ...
    async def revoke(self, user_id: str, tool: str) -> bool: ...
    async def partial(self, user_id: str, approval_id: str) -> dict[str, dict[str, Any]]: ...
    async def keep_partial(self, user_id: str, approval_id: str,
                           decisions: dict[str, dict[str, Any]], ttl: float) -> None: ...
    async def claim(self, user_id: str, approval_id: str, ttl: float) -> bool: ...
    async def release(self, user_id: str, approval_id: str) -> None: ...
    async def expire_at(self, entry: dict[str, str], at: float) -> None: ...
    async def due(self, now: float) -> list[dict[str, str]]: ...


def approval_store(redis: Any) -> ApprovalStore:
    return RedisApprovalStore(redis) if redis is not None else MemoryApprovalStore()


class RedisApprovalStore:
    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def always_allowed(self, user_id: str) -> set[str]:
        members = await self.redis.smembers(f"{_PREFIX}:allowed:{user_id}")
        return {m.decode() if isinstance(m, bytes) else m for m in members}

    async def allow(self, user_id: str, tool: str) -> None:
        await self.redis.sadd(f"{_PREFIX}:allowed:{user_id}", tool)

    async def revoke(self, user_id: str, tool: str) -> bool:
        return bool(await self.redis.srem(f"{_PREFIX}:allowed:{user_id}", tool))

    async def partial(self, user_id: str, approval_id: str) -> dict[str, dict[str, Any]]:
        raw = await self.redis.get(f"{_PREFIX}:partial:{user_id}:{approval_id}")
        decided: dict[str, dict[str, Any]] = json.loads(raw) if raw else {}
        return decided

    async def keep_partial(self, user_id: str, approval_id: str,
                           decisions: dict[str, dict[str, Any]], ttl: float) -> None:
        await self.redis.set(f"{_PREFIX}:partial:{user_id}:{approval_id}",
                             json.dumps(decisions), px=max(1, int(ttl * 1000)))

    async def claim(self, user_id: str, approval_id: str, ttl: float) -> bool:
        return bool(await self.redis.set(f"{_PREFIX}:claim:{user_id}:{approval_id}", "1",
                                         nx=True, px=max(1, int(ttl * 1000))))

    async def release(self, user_id: str, approval_id: str) -> None:
        await self.redis.delete(f"{_PREFIX}:claim:{user_id}:{approval_id}")

    async def expire_at(self, entry: dict[str, str], at: float) -> None:
        await self.redis.zadd(_EXPIRING, {json.dumps(entry, sort_keys=True): at})

    async def due(self, now: float) -> list[dict[str, str]]:
        """Approvals past their time, each taken by one replica only (its ZREM)."""
        members = await self.redis.zrangebyscore(_EXPIRING, "-inf", now, start=0, num=50)
        taken = []
        for member in members:
            if await self.redis.zrem(_EXPIRING, member):
                taken.append(json.loads(member))
        return taken


class MemoryApprovalStore:
    """For a server without Redis, whose threads live in this process too."""

    def __init__(self) -> None:
        self.allowed: dict[str, set[str]] = {}
        self.partials: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
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

    async def partial(self, user_id: str, approval_id: str) -> dict[str, dict[str, Any]]:
        return dict(self.partials.get((user_id, approval_id), {}))

    async def keep_partial(self, user_id: str, approval_id: str,
                           decisions: dict[str, dict[str, Any]], ttl: float) -> None:
        self.partials[(user_id, approval_id)] = dict(decisions)

    async def claim(self, user_id: str, approval_id: str, ttl: float) -> bool:
        key = (user_id, approval_id)
        if self.claims.get(key, 0.0) > time.monotonic():
            return False
        self.claims[key] = time.monotonic() + ttl
        return True

    async def release(self, user_id: str, approval_id: str) -> None:
        self.claims.pop((user_id, approval_id), None)

    async def expire_at(self, entry: dict[str, str], at: float) -> None:
        self.expiring.append((at, entry))

    async def due(self, now: float) -> list[dict[str, str]]:
        taken = [entry for at, entry in self.expiring if at <= now]
        self.expiring = [(at, entry) for at, entry in self.expiring if at > now]
        return taken
