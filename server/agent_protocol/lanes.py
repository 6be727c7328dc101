"""One run at a time on a thread, across replicas: a lease in Redis names the run that
holds the thread, and runs that wait (`multitask_strategy` enqueue, interrupt, rollback)
queue behind it in order. A lease is refreshed while its run lives, so a replica that
dies frees its threads within `LEASE_MS`.
"""

from __future__ import annotations

from typing import Any

LEASE_MS = 15_000

# KEYS: busy, queue. ARGV: run, lease ms. The thread is free and nobody waits: take it.
_TAKE_IF_FREE = """
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('LLEN', KEYS[2]) > 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: busy, queue. ARGV: run, lease ms. Take the thread when it is free and this run
# is first in the queue (or nobody queues); it leaves the queue then.
_TAKE_IN_TURN = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return 1 end
if holder then return 0 end
local first = redis.call('LINDEX', KEYS[2], 0)
if first and first ~= ARGV[1] then return 0 end
if first then redis.call('LPOP', KEYS[2]) end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: busy. ARGV: run. Only the holder lets go.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: busy... ARGV: lease ms, then the runs holding them, in the same order.
_REFRESH = """
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then redis.call('PEXPIRE', key, ARGV[1]) end
end
return 1
"""


class Lanes:
    def __init__(self, redis: Any, prefix: str = "parley:ap") -> None:
        self.redis = redis
        self.prefix = prefix
        self._take_if_free = redis.register_script(_TAKE_IF_FREE)
        self._take_in_turn = redis.register_script(_TAKE_IN_TURN)
        self._release = redis.register_script(_RELEASE)
        self._refresh = redis.register_script(_REFRESH)

    def _busy(self, lane: str) -> str:
        return f"{self.prefix}:busy:{lane}"

    def _queue(self, lane: str) -> str:
        return f"{self.prefix}:queue:{lane}"

    async def take_if_free(self, lane: str, run_id: str) -> bool:
        return bool(await self._take_if_free(keys=[self._busy(lane), self._queue(lane)],
                                             args=[run_id, LEASE_MS]))

    async def enqueue(self, lane: str, run_id: str) -> None:
        await self.redis.rpush(self._queue(lane), run_id)

    async def take_in_turn(self, lane: str, run_id: str) -> bool:
        return bool(await self._take_in_turn(keys=[self._busy(lane), self._queue(lane)],
                                             args=[run_id, LEASE_MS]))

    async def leave_queue(self, lane: str, run_id: str) -> None:
        await self.redis.lrem(self._queue(lane), 0, run_id)

    async def release(self, lane: str, run_id: str) -> bool:
        return bool(await self._release(keys=[self._busy(lane)], args=[run_id]))

    async def queue_release(self, pipe: Any, lane: str, run_id: str) -> None:
        """`release` on the caller's pipeline, sent with its other writes (queuing a
        script on a pipeline is a coroutine in redis-py's asyncio client)."""
        await self._release(keys=[self._busy(lane)], args=[run_id], client=pipe)

    async def refresh(self, held: dict[str, str]) -> None:
        """Extend the leases `held` maps (lane -> run)."""
        if held:
            lanes = list(held)
            await self._refresh(keys=[self._busy(lane) for lane in lanes],
                                args=[LEASE_MS, *[held[lane] for lane in lanes]])

    async def inflight(self, lane: str) -> list[str]:
        """The run holding the thread, then those queued for it."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self._busy(lane))
        pipe.lrange(self._queue(lane), 0, -1)
        holder, queued = await pipe.execute()
        return ([holder.decode()] if holder else []) + [q.decode() for q in queued]
