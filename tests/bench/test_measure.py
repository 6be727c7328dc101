"""The bench's own arithmetic: interleaved timing and the targets table. (The bench itself
measures; `make bench` runs it. These check that what it reports is what it measured.)"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from bench.measure import cpu_per_turn, interleaved, interleaved_throughput, percentiles
from bench.report import memory_floor, server_embedding, summarise, targets

RESULTS = Path(__file__).parents[2] / "bench" / "results" / "latest.json"


async def test_routes_take_turns_in_blocks_after_their_warm_up() -> None:
    calls: list[str] = []

    def measure(name: str) -> Any:
        async def run() -> str:
            calls.append(name)
            return name
        return run

    samples = await interleaved({"a": measure("a"), "b": measure("b"), "c": measure("c")},
                                n=5, warmup=1, block=2, settle=0)
    assert calls[:3] == ["a", "b", "c"]  # warm-up, then blocks of two, rotating the start
    assert "".join(calls[3:]) == "aabbcc" + "bbccaa" + "cab"
    assert {name: len(values) for name, values in samples.items()} == {"a": 5, "b": 5, "c": 5}


async def test_throughput_counts_the_calls_of_each() -> None:
    async def quick() -> None:
        return None

    rates = await interleaved_throughput({"x": quick, "y": quick}, concurrency=2,
                                         seconds=0.1)
    assert set(rates) == {"x", "y"} and all(rate > 100 for rate in rates.values())


async def test_one_slow_window_does_not_decide_the_rate(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import measure

    windows = {"steady": iter([100.0, 100.0, 100.0]), "disturbed": iter([100.0, 10.0, 100.0])}
    order: list[str] = []

    async def scripted(call: Any, *, concurrency: int, seconds: float) -> float:
        name = await call()
        order.append(name)
        return next(windows[name])

    async def named(name: str) -> str:
        return name

    monkeypatch.setattr(measure, "throughput", scripted)
    rates = await interleaved_throughput(
        {"steady": partial(named, "steady"), "disturbed": partial(named, "disturbed")},
        concurrency=32, seconds=3.0, rounds=3)
    assert rates == {"steady": 100.0, "disturbed": 100.0}  # the mean would say 70
    assert order == ["steady", "disturbed", "disturbed", "steady", "steady", "disturbed"]


async def test_cpu_a_turn_is_the_servers_cpu_counted_until_it_is_idle() -> None:
    """Measured on this very process: one call burns 3 ms of CPU while answering, and
    leaves 2 ms for later (the way a server's history writes run after the answer)."""
    later: list[asyncio.Task[None]] = []

    def burn(ms: float) -> None:
        until = time.thread_time() + ms / 1000
        while time.thread_time() < until:
            pass

    async def deferred() -> None:
        await asyncio.sleep(0.05)
        burn(2)

    async def heavy() -> None:
        burn(3)
        later.append(asyncio.create_task(deferred()))

    async def light() -> None:
        burn(1)

    per_turn = await cpu_per_turn({"heavy": (heavy, os.getpid()),
                                   "light": (light, os.getpid())},
                                  concurrency=2, seconds=0.3, rounds=2)
    assert all(len(samples) == 2 for samples in per_turn.values())
    # 3 ms now and 2 later; the bounds above leave room for other threads of the suite.
    assert all(5 <= ms < 50 for ms in per_turn["heavy"]), per_turn
    assert all(1 <= ms < 50 for ms in per_turn["light"]), per_turn


def test_percentiles() -> None:
    stats = percentiles([float(v) for v in range(1, 101)])
    assert (stats["p50"], stats["p99"], stats["n"]) == (51.0, 99.0, 100)


def test_the_targets_table_follows_the_numbers() -> None:
    results: dict[str, Any] = json.loads(RESULTS.read_text())
    rows = "\n".join(targets(results))
    assert all(line.count("|") == 5 for line in rows.splitlines() if line.startswith("|"))
    fast = copy.deepcopy(results)
    base = fast["in_process"]["p50"]
    fast["parley_chat"]["p50"] = base + (fast["langserve"]["p50"] - base) / 2
    fast["parley_chat"]["stream"]["first_token"]["p50"] = \
        fast["langserve"]["stream"]["first_token"]["p50"] * 1.1
    fast["parley_chat"]["throughput"]["32"] = fast["langserve"]["throughput"]["32"] + 1
    fast["parley_no_memory"]["throughput"]["32"] = fast["langserve"]["throughput"]["32"] - 1
    fast["recall"]["100000"]["p99"] = 6.0
    fast["parley_chat"]["cpu_vs_langserve"] = 0.9
    fast["parley_no_memory"]["cpu_vs_langserve"] = 1.25
    verdicts = {line.split("|")[1].strip(): line.split("|")[3].strip()
                for line in targets(fast) if line.startswith("| ") and "met |" not in line}
    without_memory = {line.split("|")[1].strip(): line.split("|")[4].strip()
                      for line in targets(fast) if line.startswith("| ") and "met" not in line}
    assert verdicts["Parley's added cost per turn ≤ LangServe's"] == "yes"
    assert verdicts["with memory on, Parley's added cost per turn ≤ 2 x LangServe's"] == "yes"
    assert verdicts["first answer token ≤ 1.2 x LangServe's"] == "yes"
    assert verdicts["turns/s at c=32 ≥ LangServe's"] == "yes"
    assert verdicts["recall p99 ≤ 5 ms at 100,000 memories"] == "no"
    assert without_memory["turns/s at c=32 ≥ LangServe's"] == "no"
    core = "turns/s a server core gives (1 / CPU a turn) ≥ LangServe's"
    assert (verdicts[core], without_memory[core]) == ("yes", "no")
    assert "1.11 x LangServe's (0.80 x without memory)" in "\n".join(targets(fast))
    assert without_memory["recall p99 ≤ 5 ms at 100,000 memories"] == "-"
    assert "| target |" in summarise(fast)


def test_the_memory_floor_is_the_bare_endpoint_plus_one_embedding() -> None:
    results: dict[str, Any] = json.loads(RESULTS.read_text())
    cheap = copy.deepcopy(results)
    server_embedding(cheap["recall"])["p50"] = 0.01
    cheap["bare"]["p50"] = cheap["in_process"]["p50"] + 0.5
    cheap["bare"]["stream"]["first_token"]["p50"] = \
        cheap["langserve"]["stream"]["first_token"]["p50"] * 0.5
    assert "within reach" in memory_floor(cheap)
    slow = copy.deepcopy(cheap)
    server_embedding(slow["recall"])["p50"] = 1000.0
    assert "out of reach" in memory_floor(slow)
    assert f"{1000.0 + 0.5:.1f} ms added per turn" in memory_floor(slow)
