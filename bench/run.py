"""`make bench`: Parley's own cost beside LangServe and a bare FastAPI floor, on the same
graph and scripted model, plus memory and local-model figures. Writes bench/results/."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.checkpoint_cost import checkpoint_costs
from bench.first_answer import first_answer_benchmark
from bench.load import load_benchmarks
from bench.local_model import local_model_benchmark
from bench.recall import memory_benchmarks
from bench.report import plot, summarise
from bench.routes import http_benchmarks
from server.embedded.redis_server import start_redis

RESULTS = Path(__file__).parent / "results"
CLIENT_CORE = {1}  # the servers run on core 0 (bench/routes.py)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


async def main() -> None:
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:  # type: ignore[operator]
        os.sched_setaffinity(0, CLIENT_CORE)  # the client on one core, servers on the other
    RESULTS.mkdir(exist_ok=True)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} ({cpu_model()}), {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}"}
    # First, a newcomer's wait from `git clone` to the first answer (it frees its own cores).
    await asyncio.to_thread(first_answer_benchmark, results)
    data = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    redis = start_redis(data / "redis")
    try:
        await http_benchmarks(results, redis.url, data)
        await memory_benchmarks(results, redis.url, data)
        results["checkpoint_cost"] = await checkpoint_costs(redis.url)
        await local_model_benchmark(results)
        await load_benchmarks(results)
    finally:
        redis.stop()
        shutil.rmtree(data, ignore_errors=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    (RESULTS / "summary.md").write_text(summarise(results))
    plot(results, RESULTS / "plot.png")
    print(summarise(results))



if __name__ == "__main__":
    asyncio.run(main())
