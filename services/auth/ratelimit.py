"""Failed-login limits per username and per client address: in Redis when the service is
given one (so replicas share the count), else in this process.

A key with `max_failures` failures inside the window is refused until the window ends.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import Protocol

from redis.asyncio import Redis


class LoginLimiter(Protocol):
    async def retry_after(self, keys: Sequence[str]) -> int:
        """Seconds until another attempt is allowed for all of `keys`; 0 when allowed now."""
        ...

    async def record_failure(self, keys: Sequence[str]) -> None: ...

    async def reset(self, keys: Sequence[str]) -> None: ...


class MemoryLimiter:
    """A sliding window per key. Used from one event loop, so it needs no lock."""

    def __init__(self, max_failures: int, window: int) -> None:
        self.max_failures, self.window = max_failures, window
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures[key]
        while failures and now - failures[0] >= self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]  # idle keys must not pile up
        return failures

    async def retry_after(self, keys: Sequence[str]) -> int:
        now = time.monotonic()
        waits = [max(1, math.ceil(self.window - (now - failures[-self.max_failures])))
                 for failures in (self._recent(key, now) for key in keys)
                 if len(failures) >= self.max_failures]
        return max(waits, default=0)

    async def record_failure(self, keys: Sequence[str]) -> None:
        now = time.monotonic()
        for key in keys:
            self._failures[key].append(now)

    async def reset(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._failures.pop(key, None)


class RedisLimiter:
    """A fixed window per key: INCR, with the expiry set by the window's first failure."""

    def __init__(self, client: Redis, max_failures: int, window: int,
                 prefix: str = "parley:auth:login-failures:") -> None:
        self.client, self.max_failures, self.window = client, max_failures, window
        self.prefix = prefix

    async def retry_after(self, keys: Sequence[str]) -> int:
        names = [self.prefix + key for key in keys]
        async with self.client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.get(name)
                pipe.ttl(name)
            replies = await pipe.execute()
        waits = [max(int(ttl), 1) for count, ttl in zip(replies[::2], replies[1::2], strict=True)
                 if int(count or 0) >= self.max_failures]
        return max(waits, default=0)

    async def record_failure(self, keys: Sequence[str]) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            for key in keys:
                pipe.incr(self.prefix + key)
                pipe.expire(self.prefix + key, self.window, nx=True)
            await pipe.execute()

    async def reset(self, keys: Sequence[str]) -> None:
        if keys:
            await self.client.delete(*(self.prefix + key for key in keys))
