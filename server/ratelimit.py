"""Per-user token buckets for the chat routes, kept in Redis so replicas share them."""

from __future__ import annotations

import logging
import time
from typing import Any

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# KEYS[1] bucket; ARGV: rate per second, burst, now (s), cost (turns). Returns the wait in
# ms (0 = go).
_BUCKET = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate)
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = math.ceil((cost - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return wait
"""


class LimitUnknown(Exception):
    """Redis cannot say whether the user is within their limit, and the server is set to
    refuse rather than let everything through."""


class RateLimiter:
    def __init__(self, redis: Any, per_minute: float, burst: int, *,
                 allow_when_down: bool = False) -> None:
        self.redis = redis
        self.rate = per_minute / 60.0
        self.burst = burst
        self.allow_when_down = allow_when_down
        self._script = redis.register_script(_BUCKET) if redis is not None else None
        self._local: dict[str, tuple[float, float]] = {}

    async def wait_for(self, user_id: str, cost: int = 1) -> float:
        """Seconds until this user may run `cost` turns; 0 when they may run now."""
        if self.rate <= 0:
            return 0.0
        if self._script is not None:
            try:
                wait_ms = await self._script(keys=[f"parley:ratelimit:{user_id}"],
                                             args=[self.rate, self.burst, time.time(), cost])
            except RedisError as exc:
                # A limit nobody can check is no limit: refused unless the operator chose
                # availability over it (PARLEY_RATE_LIMIT_WHEN_REDIS_DOWN=allow).
                if not self.allow_when_down:
                    raise LimitUnknown(str(exc)) from exc
                log.warning("rate limit unavailable (Redis error); request allowed")
                return 0.0
            return int(wait_ms) / 1000
        tokens, at = self._local.get(user_id, (float(self.burst), time.monotonic()))
        now = time.monotonic()
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= cost:
            self._local[user_id] = (tokens - cost, now)
            return 0.0
        self._local[user_id] = (tokens, now)
        return (cost - tokens) / self.rate
