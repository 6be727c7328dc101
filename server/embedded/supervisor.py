"""Keeps the embedded Redis running: a server whose redis-server dies (killed, out of
memory) would otherwise answer every turn with a store error until restarted by hand.
The supervisor notices within a second and starts it again on the same port and data, so
the clients' connections simply reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from server.embedded.redis_server import EmbeddedRedis, start_redis

log = logging.getLogger(__name__)

CHECK_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0


class RedisSupervisor:
    def __init__(self, redis: EmbeddedRedis) -> None:
        self.redis = redis
        self.restarts = 0

    async def watch(self) -> None:
        backoff = 1.0
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            code = self.redis.process.poll()
            if code is None:
                backoff = 1.0
                continue
            log.error("redis-server (pid %d) exited with %s: starting it again",
                      self.redis.pid, code)
            try:
                self.redis = await asyncio.to_thread(start_redis, self.redis.data_dir,
                                                     port=self.redis.port)
            except Exception:
                log.exception("could not restart redis-server; trying again in %.0f s",
                              backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            self.restarts += 1
            log.warning("redis-server started again (pid %d) on %s", self.redis.pid,
                        self.redis.url)

    def stop(self) -> None:
        self.redis.stop()


@asynccontextmanager
async def supervised(redis: EmbeddedRedis) -> AsyncIterator[RedisSupervisor]:
    supervisor = RedisSupervisor(redis)
    task = asyncio.create_task(supervisor.watch(), name="redis-supervisor")
    try:
        yield supervisor
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
