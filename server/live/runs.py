"""Runs in tasks of their own, which the request that starts them follows like any
later follower, so the run does not depend on its first client staying.

A run whose policy is "cancel" is cancelled once nobody has followed it for `grace`
seconds: a client that lost its connection has that long to come back with
`Last-Event-ID`. Followers on another replica tell the run's replica they watch over the
bus. A run's owner (the user) and whether it still runs are kept in Redis beside its
log, so any replica can refuse another user's resume (404) and stop following a run
whose replica died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

from server.live.bus import Bus
from server.live.log import EventLog, Frame, follow_stored

log = logging.getLogger(__name__)

OnDisconnect = Literal["cancel", "continue"]
ALIVE_MS = 15_000  # a run's liveness in Redis, refreshed every third of it
Produce = Callable[["LiveRun"], Coroutine[Any, Any, None]]


PREFIX = "parley:live"


def log_key(run_id: str, prefix: str = PREFIX) -> str:
    """Where a run's events are kept in Redis."""
    return f"{prefix}:events:{run_id}"


class NoSuchRun(LookupError):
    """No run of that id that this user may follow (unknown, expired, or another's)."""


@dataclass
class LiveRun:
    run_id: str
    owner: str
    log: EventLog
    on_disconnect: OnDisconnect
    grace: float
    task: asyncio.Task[None] | None = None
    watchers: int = 0  # followers in this process now
    watched_until: float = 0.0  # a follower elsewhere said it watches until then
    cancel_action: str | None = None  # why it was cancelled: "interrupt", "rollback", ...
    result: Any = None  # what the run leaves for those who wait on it
    _check: asyncio.TimerHandle | None = field(default=None, repr=False)

    def cancel(self, action: str = "interrupt") -> bool:
        """Stop the run (once); False when it had ended already."""
        if self.task is None or self.task.done() or self.cancel_action is not None:
            return False
        self.cancel_action = action
        self.task.cancel()
        return True


class LiveRuns:
    def __init__(self, redis: Any = None, *, max_len: int = 10_000, ttl: int = 3600,
                 prefix: str = PREFIX) -> None:
        self.redis = redis
        self.max_len = max_len
        self.ttl = ttl
        self.prefix = prefix
        self.bus = Bus(redis, f"{prefix}:control")
        self._runs: dict[str, LiveRun] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        self.bus.on("cancel", self._on_cancel)
        self.bus.on("watch", self._on_watch)

    def log_key(self, run_id: str) -> str:
        return log_key(run_id, self.prefix)

    def _meta_key(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}"

    def _alive_key(self, run_id: str) -> str:
        return f"{self.prefix}:alive:{run_id}"

    async def start(self) -> None:
        await self.bus.start()
        if self.redis is not None:
            self._heartbeat = asyncio.create_task(self._beat())

    async def aclose(self) -> None:
        runs = [r for r in self._runs.values() if r.task is not None]
        for run in runs:
            run.cancel("shutdown")
        if runs:
            await asyncio.wait([r.task for r in runs if r.task is not None], timeout=10)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        await self.bus.aclose()

    async def begin(self, run_id: str, owner: str, produce: Produce, *,
                    on_disconnect: OnDisconnect = "continue", grace: float = 0.0,
                    kept: bool = True, pipe: Any = None) -> LiveRun:
        """Start `produce(run)` in a task; it appends the run's frames to `run.log`. `kept`:
        the frames also go to Redis, for followers on other replicas. The run's owner and
        liveness go on `pipe` when given (the caller sends it), else in a round of their
        own."""
        run = LiveRun(run_id=run_id, owner=owner, on_disconnect=on_disconnect, grace=grace,
                      log=EventLog(self.log_key(run_id), self.redis if kept else None,
                                   max_len=self.max_len, ttl=self.ttl))
        if self.redis is not None:
            own = pipe is None
            pipe = self.redis.pipeline(transaction=False) if own else pipe
            pipe.set(self._meta_key(run_id), owner, ex=self.ttl)
            pipe.set(self._alive_key(run_id), 1, px=ALIVE_MS)
            if own:
                await pipe.execute()
        self._runs[run_id] = run
        run.task = asyncio.create_task(self._drive(run, produce))
        return run

    async def _drive(self, run: LiveRun, produce: Produce) -> None:
        try:
            await produce(run)
        except asyncio.CancelledError:
            pass  # `produce` had its chance to tidy up; the log closes below
        except Exception:
            log.exception("run %s failed outside its turn", run.run_id)
        finally:
            if run._check is not None:
                run._check.cancel()
            try:
                await run.log.close()
                if self.redis is not None:
                    await self.redis.delete(self._alive_key(run.run_id))
            except Exception:
                log.warning("could not close the log of run %s", run.run_id, exc_info=True)
            self._runs.pop(run.run_id, None)

    def local(self, run_id: str) -> LiveRun | None:
        return self._runs.get(run_id)

    async def check(self, run_id: str, user_id: str) -> None:
        """Raise NoSuchRun unless `user_id` may follow the run (here or elsewhere)."""
        run = self._runs.get(run_id)
        if run is not None:
            if run.owner != user_id:
                raise NoSuchRun(run_id)
            return
        owner = await self.redis.get(self._meta_key(run_id)) if self.redis else None
        if owner is None or owner.decode() != user_id:
            raise NoSuchRun(run_id)

    async def follow(self, run_id: str, after: int | None = -1) -> AsyncIterator[Frame]:
        """The run's frames after number `after` (None: from now on), wherever it runs
        (call `check` first). Following counts as watching: a "cancel" run is not
        cancelled meanwhile."""
        run = self._runs.get(run_id)
        if run is not None:
            if after is None:
                after = len(run.log.frames) - 1
            run.watchers += 1
            if run._check is not None:
                run._check.cancel()
                run._check = None
            try:
                async for frame in run.log.follow(after):
                    yield frame
            finally:
                run.watchers -= 1
                if run.watchers == 0:
                    self._check_later(run, run.grace)
            return
        if self.redis is None:
            return
        if after is None:
            if not await self.alive(run_id):
                return
            newest = await self.redis.xrevrange(self.log_key(run_id), count=1)
            after = int(newest[0][0].decode().split("-", 1)[1]) - 1 if newest else -1
        watching = asyncio.create_task(self._watch(run_id))
        try:
            async for frame in follow_stored(self.redis, self.log_key(run_id), after,
                                             alive=lambda: self.alive(run_id)):
                yield frame
        finally:
            watching.cancel()

    async def alive(self, run_id: str) -> bool:
        """Whether the run still runs, here or on another replica."""
        if run_id in self._runs:
            return True
        if self.redis is None:
            return False
        return bool(await self.redis.exists(self._alive_key(run_id)))

    async def _watch(self, run_id: str) -> None:
        """Tell the run's replica, while following from here, that someone watches."""
        period = 2.0
        while True:
            with contextlib.suppress(Exception):
                await self.bus.publish("watch", run_id=run_id, seconds=3 * period)
            await asyncio.sleep(period)

    def _on_watch(self, message: dict[str, Any]) -> None:
        run = self._runs.get(str(message.get("run_id")))
        if run is None:
            return
        seconds = float(message.get("seconds", 0))
        run.watched_until = max(run.watched_until, time.monotonic() + seconds)
        if run.watchers == 0:
            self._check_later(run, seconds)

    def _check_later(self, run: LiveRun, delay: float) -> None:
        if run.on_disconnect != "cancel" or run.task is None or run.task.done():
            return
        if run._check is not None:
            run._check.cancel()
        run._check = asyncio.get_running_loop().call_later(max(0.0, delay),
                                                           self._cancel_if_unwatched, run)

    def _cancel_if_unwatched(self, run: LiveRun) -> None:
        run._check = None
        if run.watchers > 0:
            return
        left = run.watched_until - time.monotonic()
        if left > 0:
            self._check_later(run, left)
            return
        if run.cancel("disconnect"):
            log.info("run %s cancelled: its client left and did not come back",
                     run.run_id)

    async def cancel(self, run_id: str, action: str = "interrupt") -> None:
        """Cancel the run wherever it runs."""
        run = self._runs.get(run_id)
        if run is not None:
            run.cancel(action)
            return
        await self.bus.publish("cancel", run_id=run_id, action=action)

    def _on_cancel(self, message: dict[str, Any]) -> None:
        run = self._runs.get(str(message.get("run_id")))
        if run is not None:
            run.cancel(str(message.get("action") or "interrupt"))

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(ALIVE_MS / 3000)
            kept = list(self._runs)
            if not kept:
                continue
            try:
                pipe = self.redis.pipeline(transaction=False)
                for run_id in kept:
                    pipe.pexpire(self._alive_key(run_id), ALIVE_MS)
                await pipe.execute()
            except Exception:
                log.warning("could not refresh the runs' liveness", exc_info=True)
