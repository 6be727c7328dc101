"""The turn-stream consumer: read with a consumer group, commit, then acknowledge.

An entry is acknowledged only after its messages are committed, so a crash between the two
redelivers it, and message ids make the second write a no-op. Entries left pending by a
consumer that died are claimed after `claim_idle_ms`. A malformed entry goes to the
dead-letter stream and is acknowledged, so it cannot block the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy.exc import InterfaceError, OperationalError, StatementError

from services.history import crud
from services.history.context import HistoryContext
from services.history.schemas import ThreadDeletion, TurnRecord

log = logging.getLogger(__name__)


async def ensure_group(redis: Redis, ctx: HistoryContext) -> None:
    try:
        await redis.xgroup_create(ctx.settings.stream, ctx.settings.group, id="0",
                                  mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


Event = TurnRecord | ThreadDeletion


def _store(ctx: HistoryContext, events: Sequence[Event]) -> None:
    """All the events of a read in one transaction and one trip to the worker thread, in
    their order: the turns between two deletions go in one batch. If it fails, none is
    acknowledged, and the retry stores each message once (ids are keys)."""
    with ctx.write_sessions() as session:
        turns: list[crud.Turn] = []
        for event in events:
            if isinstance(event, TurnRecord):
                turns.append(crud.Turn(event.user_id, event.thread_id, event.agent,
                                       event.messages))
                continue
            crud.store_turns(session=session, turns=turns)
            turns = []
            crud.delete_thread(session=session, user_id=event.user_id,
                               thread_id=event.thread_id)
        crud.store_turns(session=session, turns=turns)
        session.commit()


def _raw(fields: Any) -> tuple[Any, type[TurnRecord] | type[ThreadDeletion]]:
    """An entry's JSON and what it holds: a turn, or a thread's deletion."""
    deletion = fields.get(b"delete_thread") or fields.get("delete_thread")
    if deletion is not None:
        return deletion, ThreadDeletion
    return fields.get(b"turn") or fields.get("turn") or b"", TurnRecord


async def _handle(redis: Redis, ctx: HistoryContext, entries: list[tuple[Any, Any]]) -> None:
    """Store the turns among `entries` (and apply thread deletions, in order), dead-letter
    the malformed ones, then acknowledge them all with one XACK."""
    parsed: list[tuple[Any, Any, Event]] = []
    for entry_id, fields in entries:
        if not fields:  # a pending entry trimmed from the stream comes back empty
            continue
        raw, kind = _raw(fields)
        try:
            parsed.append((entry_id, raw, kind.model_validate_json(raw)))
        except ValidationError as exc:
            await _dead_letter(redis, ctx, entry_id, raw, exc.errors()[:3], exc)
    if parsed:
        try:
            await asyncio.to_thread(_store, ctx, [event for *_, event in parsed])
        except StatementError as exc:
            if _unreachable(exc):
                raise  # the database is down: the read stays pending and is retried
            # The database refused something in the read (a NUL in a text, say). One turn
            # must not hold back the others: store them one at a time, dead-letter the
            # ones refused again.
            for entry_id, raw, event in parsed:
                try:
                    await asyncio.to_thread(_store, ctx, [event])
                except StatementError as refused:
                    if _unreachable(refused):
                        raise
                    await _dead_letter(redis, ctx, entry_id, raw, str(refused.orig or refused),
                                       refused)
    await redis.xack(ctx.settings.stream, ctx.settings.group,
                     *[entry_id for entry_id, _fields in entries])


def _unreachable(exc: StatementError) -> bool:
    return isinstance(exc, (OperationalError, InterfaceError))


async def _dead_letter(redis: Redis, ctx: HistoryContext, entry_id: Any, raw: Any,
                       summary: object, exc: Exception) -> None:
    s = ctx.settings
    log.error("turn %s cannot be stored; moved to %s: %s", entry_id, s.dead_letter_stream,
              summary)
    await redis.xadd(s.dead_letter_stream,
                     {"turn": raw, "error": str(exc)[:1000], "entry": entry_id})


async def consume_once(redis: Redis, ctx: HistoryContext, *, block_ms: int | None = None,
                       recover: bool = True, claim_idle_ms: int | None = None) -> int:
    """Handle what is there: with `recover`, first this consumer's own unacknowledged
    entries, then ones other consumers left idle `claim_idle_ms` (default: the settings');
    then new ones (waiting up to `block_ms`). Returns the count."""
    s = ctx.settings
    batches: list[Any] = []
    if recover:
        own: Any = await redis.xreadgroup(s.group, s.consumer, {s.stream: "0"}, count=s.batch)
        idle = s.claim_idle_ms if claim_idle_ms is None else claim_idle_ms
        claimed = await redis.xautoclaim(s.stream, s.group, s.consumer, idle,
                                         start_id="0-0", count=s.batch)
        batches = [entries for _name, entries in own or []]
        batches.append(claimed[1] if claimed else [])
    if not any(batches):
        fresh: Any = await redis.xreadgroup(s.group, s.consumer, {s.stream: ">"}, count=s.batch,
                                       block=s.block_ms if block_ms is None else block_ms)
        batches = [entries for _name, entries in fresh or []]
    handled = 0
    for entries in batches:
        if entries:
            await _handle(redis, ctx, entries)
            handled += len(entries)
    return handled


async def run_consumer(redis: Redis, ctx: HistoryContext, stop: asyncio.Event, *,
                       sole_reader: bool = False) -> None:
    """Consume until `stop` is set; each step blocks at most `block_ms`, so setting `stop`
    ends the loop between commands, without cancelling one midway. A `sole_reader` (the
    embedded shape, whose Redis no other process reads) takes every pending entry at start:
    they are its own crashed predecessor's, and nobody else would store them."""
    # Pending entries exist only after a crash or a failed step, and a dead consumer's
    # entries become claimable after `claim_idle_ms`: look for them at start, after a
    # failure and every half `claim_idle_ms`, not on every read (two round trips a turn).
    # The start-up steps run inside the loop, so a passing failure there is retried too.
    grouped = False
    draining = sole_reader
    recover_at = 0.0
    while not stop.is_set():
        recover = draining or time.monotonic() >= recover_at
        try:
            if not grouped:
                await ensure_group(redis, ctx)
                grouped = True
            handled = await consume_once(redis, ctx, recover=recover,
                                         claim_idle_ms=0 if draining else None)
            draining = draining and handled >= ctx.settings.batch
            if recover:
                recover_at = time.monotonic() + ctx.settings.claim_idle_ms / 2000
            if 0 < handled < ctx.settings.batch and ctx.settings.linger_ms > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), ctx.settings.linger_ms / 1000)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The stream or its group is gone (Redis flushed or restarted empty).
            log.warning("turn stream group missing; creating it again")
            await ensure_group(redis, ctx)
            recover_at = 0.0
        except Exception:
            log.exception("history consumer step failed; retrying")
            recover_at = 0.0  # what the failed step read is pending now: take it again
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


@asynccontextmanager
async def consumer_running(redis_url: str, ctx: HistoryContext, *, sole_reader: bool = False
                           ) -> AsyncIterator[None]:
    """Run the consumer, on a Redis connection of its own, while the block is open."""
    redis = Redis.from_url(redis_url)
    stop = asyncio.Event()
    task = asyncio.create_task(run_consumer(redis, ctx, stop, sole_reader=sole_reader))
    try:
        yield
    finally:
        stop.set()
        _done, pending = await asyncio.wait({task}, timeout=ctx.settings.block_ms / 1000 + 2)
        for leftover in pending:
            leftover.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2)
        if task.done() and not task.cancelled() and task.exception():
            log.error("history consumer ended with %r", task.exception())
        await redis.aclose()


def main() -> None:  # pragma: no cover - process entry point
    """Run the consumer as its own process: `python -m services.history.consumer`."""
    from services.history.context import build_history
    from services.history.settings import HistorySettings

    settings = HistorySettings()
    if not settings.redis_url:
        raise SystemExit("set PARLEY_HISTORY_REDIS_URL")

    async def run() -> None:
        ctx = build_history(settings)
        ctx.start()
        redis = Redis.from_url(settings.redis_url or "")
        try:
            await run_consumer(redis, ctx, asyncio.Event())
        finally:
            await redis.aclose()
            ctx.close()

    asyncio.run(run())


if __name__ == "__main__":  # pragma: no cover
    main()
