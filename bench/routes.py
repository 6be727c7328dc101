"""The HTTP side of `make bench`: each server (bare FastAPI, plain LangServe, Parley) in a
process of its own pinned to one core, timed per turn, streaming and under concurrency."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from langchain_core.messages import HumanMessage

from bench.graph import bench_builder
from bench.measure import percentiles, sequential, throughput
from server.embedded.redis_server import free_port

N, WARMUP, SECONDS = 200, 20, 4.0
SERVER_CORE = "0"


@contextmanager
def server(kind: str, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    port = free_port()
    pin = ["taskset", "-c", SERVER_CORE] if shutil.which("taskset") else []
    proc = subprocess.Popen([*pin, sys.executable, "-m", "bench.servers", kind, str(port)],
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
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


async def streaming(client: httpx.AsyncClient, url: str, body: Any, marker: bytes,
                    headers: dict[str, str] | None = None) -> dict[str, Any]:
    firsts, tokens = [], []
    for i in range(N // 2 + WARMUP):
        first, token = await first_event_ms(client, url, body(10_000 + i), marker, headers)
        if i >= WARMUP:
            firsts.append(first)
            tokens.append(token)
    return {"first_event": percentiles(firsts), "first_token": percentiles(tokens)}


def asker(client: httpx.AsyncClient, url: str, body: Any,
          headers: dict[str, str] | None = None) -> Any:
    """A call that sends a new question each time (`body(n)`), so no cache answers for the
    platform, and fails on anything but 200, so an error is never timed as a fast turn."""
    counter = itertools.count()

    async def ask() -> None:
        response = await client.post(url, json=body(next(counter)), headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")

    return ask


def question(n: int) -> str:
    return f"what is the answer to question {n}?"


def chat_body(n: int) -> dict[str, Any]:
    return {"message": question(n)}


def langserve_body(n: int) -> dict[str, Any]:
    return {"input": {"messages": [{"type": "human", "content": question(n)}]}}


async def http_benchmarks(results: dict[str, Any], redis_url: str, data: Path) -> None:
    graph = bench_builder().compile()
    message = {"messages": [HumanMessage("what is the answer?")]}
    results["in_process"] = await sequential(lambda: graph.ainvoke(message), n=N,
                                             warmup=WARMUP)
    env = {"BENCH_DATA": str(data), "BENCH_REDIS": redis_url}
    async with httpx.AsyncClient(timeout=60) as client:
        with server("bare", env) as (url, pid):
            results["bare"] = await measure_route(
                client, pid, f"{url}/invoke", chat_body, f"{url}/stream", chat_body)
        with server("langserve", env) as (url, pid):
            results["langserve"] = await measure_route(
                client, pid, f"{url}/graph/invoke", langserve_body,
                f"{url}/graph/stream_events", langserve_body)
        with server("parley", env) as (url, pid):
            auth = await bench_login(client, url)
            results["parley_chat"] = await measure_route(
                client, pid, f"{url}/chat", chat_body, f"{url}/chat/stream", chat_body, auth)
            results["parley_langserve"] = await sequential(
                asker(client, f"{url}/agents/assistant/invoke", langserve_body, auth), n=N,
                warmup=WARMUP)
        # The same without long-term memory: what the query's embedding costs.
        with server("parley", {**env, "PARLEY_MEMORY_ENABLED": "false"}) as (url, pid):
            auth = await bench_login(client, url)
            results["parley_no_memory"] = await measure_route(
                client, pid, f"{url}/chat", chat_body, f"{url}/chat/stream", chat_body, auth)


async def measure_route(client: httpx.AsyncClient, pid: int, url: str, body: Any,
                        stream_url: str, stream_body: Any,
                        headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Sequential latency, streaming, throughput at 1, 8 and 32 clients, and the server's
    RSS, for one route of one server."""
    ask = asker(client, url, body, headers)
    result: dict[str, Any] = await sequential(ask, n=N, warmup=WARMUP)
    result["stream"] = await streaming(client, stream_url, stream_body, b"word0", headers)
    result["throughput"] = {str(c): await throughput(ask, concurrency=c, seconds=SECONDS)
                            for c in (1, 8, 32)}
    result["rss_mb"] = rss_mb(pid)
    return result

async def bench_login(client: httpx.AsyncClient, url: str) -> dict[str, str]:
    await client.post(f"{url}/auth/register",
                      json={"username": "bench", "password": "benchmark password"})
    login = await client.post(f"{url}/auth/login",
                              json={"username": "bench", "password": "benchmark password"})
    return {"Authorization": f"Bearer {login.json()['access_token']}"}

