"""Failed-login limits per username and per client address, in Redis when configured (so
replicas share them), else in this process."""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque
from typing import Protocol

import redis


class LoginLimiter(Protocol):
    def retry_after(self, keys: list[str]) -> int:
        """Seconds until another attempt is allowed for any of `keys`; 0 when allowed."""

    def record_failure(self, keys: list[str]) -> None: ...

    def reset(self, keys: list[str]) -> None: ...


class MemoryLimiter:
    def __init__(self, max_failures: int, window: int) -> None:
        self.max_failures, self.window = max_failures, window
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures[key]
        while failures and now - failures[0] > self.window:
            failures.popleft()
        return failures

    def retry_after(self, keys: list[str]) -> int:
        now = time.monotonic()
        with self._lock:
            waits = [math.ceil(self.window - (now - f[0])) for f in
                     (self._recent(k, now) for k in keys) if len(f) >= self.max_failures]
        return max(waits, default=0)

    def record_failure(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._failures[key].append(time.monotonic())

    def reset(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


class RedisLimiter:
    """A fixed window per key: INCR with an expiry set by the first failure."""

    def __init__(self, client: redis.Redis, max_failures: int, window: int) -> None:
        self.client, self.max_failures, self.window = client, max_failures, window

    def _key(self, key: str) -> str:
        return f"parley:auth:login-failures:{key}"

    def retry_after(self, keys: list[str]) -> int:
        waits = []
        for key in keys:
            count = int(self.client.get(self._key(key)) or 0)
            if count >= self.max_failures:
                waits.append(max(int(self.client.ttl(self._key(key))), 1))
        return max(waits, default=0)

    def record_failure(self, keys: list[str]) -> None:
        pipe = self.client.pipeline()
        for key in keys:
            pipe.incr(self._key(key))
            pipe.expire(self._key(key), self.window, nx=True)
        pipe.execute()

    def reset(self, keys: list[str]) -> None:
        self.client.delete(*(self._key(k) for k in keys))
