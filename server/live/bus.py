"""One Redis pub/sub channel the replicas share for what must reach the replica that runs
a run: cancel it, someone watches it, it is done, a thread is free. Without Redis,
messages go to this process's handlers only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], None]


class Bus:
    def __init__(self, redis: Any = None, channel: str = "parley:live:control") -> None:
        self.redis = redis
        self.channel = channel
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def on(self, kind: str, handler: Handler) -> None:
        """`handler(message)` for each message of `kind`, whichever replica sent it."""
        self._handlers[kind].append(handler)

    async def publish(self, kind: str, **fields: Any) -> None:
        message = {"kind": kind, **fields}
        if self.redis is None:
            self._dispatch(message)
            return
        await self.redis.publish(self.channel, json.dumps(message))

    def queue_publish(self, pipe: Any, kind: str, **fields: Any) -> None:
        """`publish` on the caller's pipeline of the same Redis, sent with its writes."""
        message = {"kind": kind, **fields}
        if self.redis is None:
            self._dispatch(message)
            return
        pipe.publish(self.channel, json.dumps(message))

    async def start(self) -> None:
        if self.redis is not None and self._task is None:
            self._task = asyncio.create_task(self._listen())
            await self._ready.wait()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._ready.set()
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is not None and message.get("type") == "message":
                        self._dispatch(json.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis restarting: subscribe again shortly
                log.warning("the run control channel dropped; subscribing again",
                            exc_info=True)
                self._ready.set()  # do not hold the start up on a Redis that is down
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _dispatch(self, message: dict[str, Any]) -> None:
        for handler in self._handlers.get(str(message.get("kind")), ()):
            try:
                handler(message)
            except Exception:
                log.exception("a run control handler failed on %r", message)
