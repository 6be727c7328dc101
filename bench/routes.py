"""The HTTP side of `make bench`: each server (bare FastAPI, plain LangServe, Parley) in a
process of its own pinned to one core, timed per turn, streaming and under concurrency."""

from __future__ import annotations

import itertools
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from langchain_core.messages import HumanMessage

from bench.graph import bench_builder
from bench.lean_http import JsonPoster
from bench.measure import (
    cpu_per_turn,
    interleaved,
    interleaved_throughput,
    percentiles,
    timed,
)
from server.embedded.redis_server import free_port

N, WARMUP, SECONDS, BLOCK = 200, 20, 9.0, 20
CPU_SECONDS, CPU_ROUNDS = 2.5, 8  # the CPU-per-turn blocks at 32 clients
SERVER_CORE = "0"


@contextmanager
def server(kind: str, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    port = free_port()
    pin = ["taskset", "-c", SERVER_CORE] if shutil.which("taskset") else []
    proc = subprocess.Popen([*pin, sys.executable, "-m", "bench.servers", kind, str(port)],
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    # Generous: on a shared machine under load, four servers starting on one core took
    # more than a minute (2026-11-29).
    deadline = time.monotonic() + 180
    while True:
        try:
            httpx.get(f"{url}/docs", timeout=1)
            break
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{kind} server did not start") from None
            time.sleep(0.1)
    try:
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(15)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


async def first_event_ms(client: httpx.AsyncClient, url: str, body: dict[str, Any],
                         token_marker: bytes, headers: dict[str, str] | None = None
                         ) -> tuple[float, float]:
    """Time to the first SSE event and to the first answer token."""
    started = time.perf_counter()
    first = token = None
    async with client.stream("POST", url, json=body, headers=headers) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code}")
        async for chunk in response.aiter_bytes():
            now = (time.perf_counter() - started) * 1000
            if first is None and b"data:" in chunk:
                first = now
            if token is None and token_marker in chunk:
                token = now
    return first or float("nan"), token or float("nan")


def asker(client: httpx.AsyncClient, url: str, body: Any,
          headers: dict[str, str] | None = None, counter: Iterator[int] | None = None
          ) -> Any:
    """A call that sends a new question each time (`body(n)`), so no cache answers for the
    platform, and fails on anything but 200, so an error is never timed as a fast turn."""
    numbers = counter if counter is not None else itertools.count()

    async def ask() -> None:
        response = await client.post(url, json=body(next(numbers)), headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")

    return ask


def lean_asker(poster: JsonPoster, body: Any, counter: Iterator[int]) -> Any:
    """`asker` through the lean client, for turns/s and CPU a turn under concurrency: the
    same questions' sequence, so no question repeats one the latency loop sent."""

    async def ask() -> None:
        status, text = await poster.post(body(next(counter)))
        if status != 200:
            raise RuntimeError(f"{poster.host}:{poster.port}: {status} {text[:200]!r}")

    return ask


def question(n: int) -> str:
    return f"what is the answer to question {n}?"


def chat_body(n: int) -> dict[str, Any]:
    return {"message": question(n)}


def langserve_body(n: int) -> dict[str, Any]:
    return {"input": {"messages": [{"type": "human", "content": question(n)}]}}


def run_body(n: int) -> dict[str, Any]:
    """An Agent Protocol run on a new thread of its own, kept as `/chat` keeps a new
    thread (LangGraph Server's defaults otherwise: a checkpoint per step)."""
    return {"assistant_id": "assistant", "on_completion": "keep",
            "input": {"messages": [{"role": "user", "content": question(n)}]},
            "stream_mode": ["values", "messages-tuple"]}


@dataclass(frozen=True)
class Route:
    """One measured route: its sequential call, and its SSE stream when it has one."""

    url: str
    body: Callable[[int], Any]
    stream_url: str | None = None
    headers: dict[str, str] | None = None
    pid: int | None = None


async def http_benchmarks(results: dict[str, Any], redis_url: str, data: Path) -> None:
    """Every server runs at once (all pinned to the server core, idle but for the route
    being timed), and the routes are timed in alternating blocks: see `interleaved`."""
    graph = bench_builder().compile()
    message = {"messages": [HumanMessage("what is the answer?")]}
    env = {"BENCH_DATA": str(data / "parley"), "BENCH_REDIS": redis_url}
    # The same platform without long-term memory: what the query's embedding costs. Its
    # own data and Redis database, so the two do not share a history stream or files.
    no_memory = {"BENCH_DATA": str(data / "parley-no-memory"),
                 "BENCH_REDIS": redis_url.rsplit("/", 1)[0] + "/1",
                 "PARLEY_MEMORY_ENABLED": "false"}
    # Idle connections are dropped before uvicorn's own 5-second keep-alive ends: with
    # httpx's default of 5 s too, a request could go out on a connection the server was
    # closing, and fail the run (ReadError, 2026-12-01) while the others had their turn.
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(keepalive_expiry=2.0)
                                 ) as client:
        with ExitStack() as stack:
            bare = stack.enter_context(server("bare", env))
            langserve = stack.enter_context(server("langserve", env))
            parley = stack.enter_context(server("parley", env))
            parley_nm = stack.enter_context(server("parley", no_memory))
            auth = await bench_login(client, parley[0])
            auth_nm = await bench_login(client, parley_nm[0])
            routes = {
                "bare": Route(f"{bare[0]}/invoke", chat_body, f"{bare[0]}/stream",
                              pid=bare[1]),
                "langserve": Route(f"{langserve[0]}/graph/invoke", langserve_body,
                                   f"{langserve[0]}/graph/stream_events", pid=langserve[1]),
                "parley_chat": Route(f"{parley[0]}/chat", chat_body, f"{parley[0]}/chat/stream",
                                     auth, parley[1]),
                "parley_no_memory": Route(f"{parley_nm[0]}/chat", chat_body,
                                          f"{parley_nm[0]}/chat/stream", auth_nm, parley_nm[1]),
                "parley_langserve": Route(f"{parley[0]}/agents/assistant/invoke",
                                          langserve_body, headers=auth),
                "parley_runs_wait": Route(f"{parley[0]}/runs/wait", run_body,
                                          f"{parley[0]}/runs/stream", auth, parley[1]),
                "parley_runs_stream": Route(f"{parley[0]}/runs/stream", run_body,
                                            headers=auth),
            }
            await measure_routes(results, client, routes,
                                 in_process=lambda: graph.ainvoke(message))
            await measure_resumed(results, client, parley[0], auth)


async def measure_routes(results: dict[str, Any], client: httpx.AsyncClient,
                         routes: dict[str, Route], in_process: Callable[[], Any]) -> None:
    """Sequential latency (and the in-process graph beside it), time to the first event
    and the first token, turns/s at 1, 8 and 32 clients, then each server's RSS."""
    counters = {name: itertools.count() for name in routes}
    asks = {name: asker(client, r.url, r.body, r.headers, counters[name])
            for name, r in routes.items()}
    calls: dict[str, Callable[[], Any]] = {"in_process": in_process, **asks}
    latencies = await interleaved({name: partial(timed, call) for name, call in calls.items()},
                                  n=N, warmup=WARMUP, block=BLOCK)
    for name, samples in latencies.items():
        results[name] = percentiles(samples)
    streamed = {name: r for name, r in routes.items() if r.stream_url}
    counter = itertools.count(10_000)
    firsts = await interleaved(
        {name: partial(_first_event, client, r, counter) for name, r in streamed.items()},
        n=N // 2, warmup=WARMUP, block=BLOCK)
    for name, pairs in firsts.items():
        results[name]["stream"] = {"first_event": percentiles([f for f, _t in pairs]),
                                   "first_token": percentiles([t for _f, t in pairs])}
    for name in streamed:
        results[name]["throughput"] = {}
    # Under concurrency the lean client sends, so the servers' core runs out before the
    # client's (see bench/lean_http.py).
    posters = {name: JsonPoster(r.url, r.headers) for name, r in streamed.items()}
    loads = {name: lean_asker(posters[name], r.body, counters[name])
             for name, r in streamed.items()}
    try:
        for concurrency in (1, 8, 32):
            rates = await interleaved_throughput(loads, concurrency=concurrency,
                                                 seconds=SECONDS)
            for name, rate in rates.items():
                results[name]["throughput"][str(concurrency)] = rate
        await measure_cpu(results, {name: (loads[name], r.pid)
                                    for name, r in streamed.items() if r.pid})
    finally:
        for poster in posters.values():
            await poster.aclose()
    for name, r in streamed.items():
        results[name]["rss_mb"] = rss_mb(r.pid) if r.pid else float("nan")


async def measure_cpu(results: dict[str, Any],
                      calls: dict[str, tuple[Callable[[], Any], int]]) -> None:
    """Server CPU ms per turn at 32 clients, each route's median, and its ratio to
    LangServe's as the median of the rounds' ratios (a round's routes ran minutes apart
    at most, so the VM's drift between minutes cancels in each ratio)."""
    per_turn = await cpu_per_turn(calls, concurrency=32, seconds=CPU_SECONDS,
                                  rounds=CPU_ROUNDS)
    reference = per_turn.get("langserve")
    for name, samples in per_turn.items():
        results[name]["cpu_ms_per_turn"] = round(statistics.median(samples), 2)
        if reference:
            results[name]["cpu_vs_langserve"] = round(statistics.median(
                mine / theirs for mine, theirs in zip(samples, reference, strict=True)), 3)


async def _first_event(client: httpx.AsyncClient, route: Route, counter: Iterator[int]
                       ) -> tuple[float, float]:
    assert route.stream_url is not None
    return await first_event_ms(client, route.stream_url, route.body(next(counter)),
                                b"word0", route.headers)


async def bench_login(client: httpx.AsyncClient, url: str) -> dict[str, str]:
    await client.post(f"{url}/auth/register",
                      json={"username": "bench", "password": "benchmark password"})
    login = await client.post(f"{url}/auth/login",
                              json={"username": "bench", "password": "benchmark password"})
    return {"Authorization": f"Bearer {login.json()['access_token']}"}



async def measure_resumed(results: dict[str, Any], client: httpx.AsyncClient, url: str,
                          auth: dict[str, str]) -> None:
    """A whole streamed turn whose client goes away after the first event and comes back
    with `Last-Event-ID` (`/chat/stream` re-sent; an Agent Protocol run joined)."""
    counter = itertools.count(20_000)

    async def chat() -> None:
        body = chat_body(next(counter))
        last = await _first_id(client, f"{url}/chat/stream", body, auth)
        await _read_all(client, "POST", f"{url}/chat/stream", auth, body,
                        {"Last-Event-ID": last}, b"event: done")

    async def run() -> None:
        body = {**run_body(next(counter)), "stream_resumable": True}
        last, where = await _first_id(client, f"{url}/runs/stream", body, auth,
                                      location=True)
        await _read_all(client, "GET", f"{url}{where}", auth, None,
                        {"Last-Event-ID": last}, b"event: end")

    samples = await interleaved({"parley_chat_resumed": partial(timed, chat),
                                 "parley_runs_resumed": partial(timed, run)},
                                n=N // 2, warmup=WARMUP, block=BLOCK)
    for name, taken in samples.items():
        results[name] = percentiles(taken)


async def _first_id(client: httpx.AsyncClient, url: str, body: Any, auth: dict[str, str],
                    *, location: bool = False) -> Any:
    async with client.stream("POST", url, json=body, headers=auth) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code}")
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                last = line[4:].strip()
                return (last, response.headers["location"]) if location else last
    raise RuntimeError(f"{url}: no event")


async def _read_all(client: httpx.AsyncClient, method: str, url: str, auth: dict[str, str],
                    body: Any, headers: dict[str, str], last: bytes) -> None:
    async with client.stream(method, url, json=body, headers={**auth, **headers}) as response:
        seen = b""
        async for chunk in response.aiter_bytes():
            seen = (seen + chunk)[-4096:]
        if response.status_code != 200 or last not in seen:
            raise RuntimeError(f"{url}: {response.status_code}, the stream did not end")
