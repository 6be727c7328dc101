"""The event log of one run: the frames a client is sent, numbered from 0.

Followers in this process read the frames as they are appended. With Redis, the frames
also go to a Redis Stream (`XADD` with the frame's number as the entry id, trimmed to
about `max_len` entries, expiring `ttl` seconds after the last write), so a client that
reconnects to another replica reads the rest there. Writes are batched: whatever was
appended while one pipeline was on its way goes in the next, so a run streaming tokens
costs a round trip per batch, not per token, and never waits for Redis itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

LAST = b"l"  # the field of the stream's closing entry: the run is over


@dataclass(frozen=True, slots=True)
class Frame:
    seq: int
    event: str
    data: bytes  # JSON; empty for an event without data


def entry_id(seq: int) -> str:
    # Stream ids must be above 0-0, and explicit ones let a follower resume after frame n
    # with an exclusive range from n's id.
    return f"0-{seq + 1}"


class EventLog:
    def __init__(self, key: str, redis: Any = None, *, max_len: int = 10_000,
                 ttl: int = 3600) -> None:
        self.key = key
        self.frames: list[Frame] = []
        self.closed = False
        self._redis = redis
        self._max_len = max_len
        self._ttl = ttl
        self._unsent: list[Frame] = []
        self._flusher: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def kept(self) -> bool:
        """Whether followers on other replicas can read it (it goes to Redis)."""
        return self._redis is not None

    def append(self, event: str, data: bytes = b"") -> Frame:
        frame = Frame(len(self.frames), event, data)
        self.frames.append(frame)
        self._wake()
        if self._redis is not None:
            self._unsent.append(frame)
            self._flush_soon()
        return frame

    async def close(self) -> None:
        """No more frames: followers here stop after the last one, and the stream gets a
        closing entry for those elsewhere. Returns once everything is written."""
        if self.closed:
            return
        self.closed = True
        self._wake()
        if self._redis is None:
            return
        self._flush_soon()
        if self._flusher is not None:
            await asyncio.shield(self._flusher)

    def _flush_soon(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        wrote_last = False
        while self._unsent or (self.closed and not wrote_last):
            batch, self._unsent = self._unsent, []
            pipe = self._redis.pipeline(transaction=False)
            for frame in batch:
                pipe.xadd(self.key, {b"e": frame.event, b"d": frame.data},
                          id=entry_id(frame.seq), maxlen=self._max_len, approximate=True)
            if self.closed and not self._unsent:
                pipe.xadd(self.key, {LAST: b"1"}, id=entry_id(len(self.frames)),
                          maxlen=self._max_len, approximate=True)
                wrote_last = True
            pipe.expire(self.key, self._ttl)
            try:
                await pipe.execute()
            except Exception:  # the run goes on; only a resume elsewhere misses these
                log.warning("could not keep %d events of %s in Redis", len(batch), self.key,
                            exc_info=True)

    def _wake(self) -> None:
        if not self._waiter.done():
            self._waiter.set_result(None)

    async def follow(self, after: int = -1) -> AsyncIterator[Frame]:
        """The frames after number `after` (-1: all), then each as it comes, until the
        log closes."""
        index = after + 1
        while True:
            while index < len(self.frames):
                yield self.frames[index]
                index += 1
            if self.closed:
                return
            if self._waiter.done():
                self._waiter = asyncio.get_running_loop().create_future()
            # Shielded: the waiter is shared, and a follower cancelled while waiting must
            # not cancel it for the others.
            await asyncio.shield(self._waiter)


async def follow_stored(redis: Any, key: str, after: int = -1, *,
                        alive: Callable[[], Awaitable[bool]], block_ms: int = 5000
                        ) -> AsyncIterator[Frame]:
    """The frames of a log another replica writes, after number `after`, until its closing
    entry, or until nothing came for `block_ms` and `alive()` says the run is gone."""
    entries = await redis.xrange(key, min=f"({entry_id(after)}" if after >= 0 else "-",
                                 max="+")
    last = entry_id(after) if after >= 0 else "0-0"
    while True:
        for raw_id, fields in entries:
            if LAST in fields:
                return
            last = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            seq = int(last.split("-", 1)[1]) - 1
            yield Frame(seq, fields[b"e"].decode(), fields.get(b"d", b""))
        read = await redis.xread({key: last}, block=block_ms)
        entries = read[0][1] if read else []
        if not entries and not await alive():
            return
