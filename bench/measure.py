"""Small measuring helpers: percentiles, timed loops, bounded concurrency."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {"p50": round(pick(0.5), 3), "p99": round(pick(0.99), 3),
            "mean": round(statistics.fmean(ordered), 3), "n": len(ordered)}


async def completed(call: Callable[[], Awaitable[object]], *, concurrency: int,
                    seconds: float) -> tuple[int, float]:
    """Calls completed by `concurrency` callers that start new ones for `seconds`, and
    the seconds until the last one ended."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await call()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, time.perf_counter() - started


async def throughput(call: Callable[[], Awaitable[object]], *, concurrency: int,
                     seconds: float) -> float:
    """Completed calls per second with `concurrency` callers for about `seconds`."""
    done, taken = await completed(call, concurrency=concurrency, seconds=seconds)
    return round(done / taken, 1)


def _in_turn(names: list[str], round_no: int) -> list[str]:
    """The order of one round: a different name leads each round, so none always runs
    first."""
    shift = round_no % len(names)
    return names[shift:] + names[:shift]


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def interleaved(measures: dict[str, Callable[[], Awaitable[T]]], *, n: int,
                      warmup: int, block: int, settle: float = 0.1) -> dict[str, list[T]]:
    """`n` measurements of each, taken in blocks of `block` that take turns, so every
    route is measured across the same minutes: on a shared VM the speed drifts by a
    quarter between minutes, which would otherwise land on whichever route ran then.
    Between blocks a pause of `settle` seconds lets a server's deferred work (history
    writes, memory) finish before another server is timed."""
    for measure in measures.values():
        for _ in range(warmup):
            await measure()
    samples: dict[str, list[T]] = {name: [] for name in measures}
    names = list(measures)
    for round_no in range(-(-n // block)):
        for name in _in_turn(names, round_no):
            for _ in range(min(block, n - len(samples[name]))):
                samples[name].append(await measures[name]())
            await asyncio.sleep(settle)
    return samples


async def interleaved_throughput(calls: dict[str, Callable[[], Awaitable[object]]], *,
                                 concurrency: int, seconds: float, rounds: int = 6
                                 ) -> dict[str, float]:
    """Turns/s of each at `concurrency`, in `rounds` windows of `seconds / rounds` that
    take turns (see `interleaved`); the median of the windows, so that one window the VM
    slowed down does not decide a comparison (with two windows and their mean, turns/s
    at 32 clients read 0.73 and 1.04 x LangServe's in two runs of the same code)."""
    rates: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for round_no in range(rounds):
        for name in _in_turn(names, round_no):
            rates[name].append(await throughput(calls[name], concurrency=concurrency,
                                                seconds=seconds / rounds))
            await asyncio.sleep(0.1)
    return {name: round(statistics.median(values), 1) for name, values in rates.items()}


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of `pid` so far (the scheduler's own count, in ns)."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[0])
        except (OSError, ValueError, IndexError):  # a thread that ended meanwhile
            continue
    return total / 1e9


async def idle_cpu(pid: int, *, every: float = 0.3, busy: float = 0.01,
                   limit: float = 30.0) -> float:
    """`pid`'s CPU seconds once it has gone `every` seconds using under `busy` of a core
    (its deferred work, history writes and memory, done), or after `limit` seconds."""
    last = cpu_seconds(pid)
    deadline = time.monotonic() + limit
    while True:
        await asyncio.sleep(every)
        now = cpu_seconds(pid)
        if now - last < busy * every or time.monotonic() > deadline:
            return now
        last = now


async def cpu_per_turn(calls: dict[str, tuple[Callable[[], Awaitable[object]], int]], *,
                       concurrency: int, seconds: float, rounds: int) -> dict[str, list[float]]:
    """Server CPU ms per turn of each (call, server pid) at `concurrency`, in `rounds`
    blocks that take turns, each counted from an idle server until it is idle again, so
    the work a turn leaves for later is charged to it, which a window's turns/s does not
    see."""
    per_turn: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for round_no in range(rounds):
        for name in _in_turn(names, round_no):
            call, pid = calls[name]
            before = await idle_cpu(pid)
            done, _taken = await completed(call, concurrency=concurrency, seconds=seconds)
            spent = await idle_cpu(pid) - before
            per_turn[name].append(spent * 1000 / max(1, done))
    return per_turn
