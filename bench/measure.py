"""Small measuring helpers: percentiles, timed loops, bounded concurrency."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {"p50": round(pick(0.5), 3), "p99": round(pick(0.99), 3),
            "mean": round(statistics.fmean(ordered), 3), "n": len(ordered)}


async def sequential(call: Callable[[], Awaitable[object]], *, n: int, warmup: int
                     ) -> dict[str, float]:
    for _ in range(warmup):
        await call()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


async def throughput(call: Callable[[], Awaitable[object]], *, concurrency: int,
                     seconds: float) -> float:
    """Completed calls per second with `concurrency` callers for about `seconds`."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await call()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return round(done / (time.perf_counter() - started), 1)
