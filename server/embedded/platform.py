"""The embedded shape: when no Redis is configured, start one under the data folder for the
platform's lifetime, supervised (restarted if it dies) and guarded by a lock on the data
folder. Tied to the app's lifespan, so it stops on every orderly shutdown (uvicorn
re-raises SIGTERM after shutdown, so code after `uvicorn.run` would not run)."""

from __future__ import annotations

import logging
from typing import Any

from server.embedded.data_lock import DataFolderLock
from server.embedded.redis_server import start_redis
from server.embedded.supervisor import supervised
from server.platform import Platform, build_platform
from server.settings import Settings

log = logging.getLogger(__name__)


async def build_embedded_platform(settings: Settings, **kwargs: Any) -> Platform:
    if settings.redis_url is not None:
        return await build_platform(settings, **kwargs)
    lock = DataFolderLock(settings.resolved_data_dir)
    lock.acquire()
    redis_dir = settings.resolved_data_dir / "redis"
    try:
        redis = start_redis(redis_dir)
    except BaseException:
        lock.release()
        raise
    log.info("started redis-server (pid %d) on %s, data in %s", redis.pid, redis.url, redis_dir)
    try:
        platform = await build_platform(settings.model_copy(update={"redis_url": redis.url}),
                                        **kwargs)
    except BaseException:
        redis.stop()
        lock.release()
        raise
    platform.owns_redis = True
    supervisor = await platform.hold(supervised(redis))
    platform.on_close(lock.release)  # callbacks run last first: the lock goes last
    platform.on_close(supervisor.stop)  # the redis-server running then, restarted or not
    return platform
