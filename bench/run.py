"""`make bench`: Parley's own cost beside LangServe and a bare FastAPI floor, on the same
graph and scripted model, plus memory and local-model figures. Writes bench/results/."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from langchain_core.messages import HumanMessage

from bench.graph import bench_builder
from bench.measure import percentiles, sequential, throughput
from server.embedded.redis_server import free_port, start_redis

RESULTS = Path(__file__).parent / "results"
N, WARMUP, SECONDS = 200, 20, 4.0
SERVER_CORE, CLIENT_CORE = "0", {1}


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
            ask = asker(client, f"{url}/invoke", chat_body)
            results["bare"] = await sequential(ask, n=N, warmup=WARMUP)
            results["bare"]["stream"] = await streaming(
                client, f"{url}/stream", chat_body, b"word0")
            results["bare"]["throughput"] = {
                str(c): await throughput(ask, concurrency=c, seconds=SECONDS)
                for c in (1, 8, 32)}
            results["bare"]["rss_mb"] = rss_mb(pid)
        with server("langserve", env) as (url, pid):
            ask = asker(client, f"{url}/graph/invoke", langserve_body)
            results["langserve"] = await sequential(ask, n=N, warmup=WARMUP)
            results["langserve"]["stream"] = await streaming(
                client, f"{url}/graph/stream_events", langserve_body, b"word0")
            results["langserve"]["throughput"] = {
                str(c): await throughput(ask, concurrency=c, seconds=SECONDS)
                for c in (1, 8, 32)}
            results["langserve"]["rss_mb"] = rss_mb(pid)
        with server("parley", env) as (url, pid):
            auth = await bench_login(client, url)
            ask = asker(client, f"{url}/chat", chat_body, auth)
            results["parley_chat"] = await sequential(ask, n=N, warmup=WARMUP)
            results["parley_langserve"] = await sequential(
                asker(client, f"{url}/agents/assistant/invoke", langserve_body, auth), n=N,
                warmup=WARMUP)
            results["parley_chat"]["stream"] = await streaming(
                client, f"{url}/chat/stream", chat_body, b"word0", auth)
            results["parley_chat"]["throughput"] = {
                str(c): await throughput(ask, concurrency=c, seconds=SECONDS)
                for c in (1, 8, 32)}
            results["parley_chat"]["rss_mb"] = rss_mb(pid)
        # The same without long-term memory: what the query's embedding costs.
        with server("parley", {**env, "PARLEY_MEMORY_ENABLED": "false"}) as (url, pid):
            auth = await bench_login(client, url)
            ask = asker(client, f"{url}/chat", chat_body, auth)
            results["parley_no_memory"] = await sequential(ask, n=N, warmup=WARMUP)
            results["parley_no_memory"]["stream"] = await streaming(
                client, f"{url}/chat/stream", chat_body, b"word0", auth)
            results["parley_no_memory"]["throughput"] = {
                str(c): await throughput(ask, concurrency=c, seconds=SECONDS)
                for c in (1, 8, 32)}
            results["parley_no_memory"]["rss_mb"] = rss_mb(pid)


async def bench_login(client: httpx.AsyncClient, url: str) -> dict[str, str]:
    await client.post(f"{url}/auth/register",
                      json={"username": "bench", "password": "benchmark password"})
    login = await client.post(f"{url}/auth/login",
                              json={"username": "bench", "password": "benchmark password"})
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


class RandomEmbeddings:
    """Unit vectors drawn from a seed per text: filling a store with 100,000 memories
    through the real model would take most of an hour; the search cost does not depend
    on where the vectors came from (their spread makes recall a worst case)."""

    def embed_array(self, texts: list[str]) -> Any:
        import hashlib

        import numpy as np

        rows = [np.random.default_rng(int.from_bytes(hashlib.blake2b(
            t.encode(), digest_size=8).digest(), "little")).standard_normal(384)
            for t in texts]
        return np.asarray(rows, dtype=np.float32)


async def memory_benchmarks(results: dict[str, Any], redis_url: str, data: Path) -> None:
    import numpy as np

    from memory.embeddings import LocalEmbeddings
    from memory.faiss_store import FaissMemory, is_exact
    from memory.vectors import unit_vectors

    embeddings = LocalEmbeddings(cache_size=0)
    embeddings.embed_array(["warm up"])
    recall: dict[str, Any] = {"embed_query_ms": percentiles([_timed(
        lambda i=i: embeddings.embed_array([f"where does my sister live? ({i})"]))
        for i in range(50)])}
    random = RandomEmbeddings()
    for size in (1_000, 10_000, 100_000):
        store = FaissMemory(data / f"memory-{size}", random)
        for start in range(0, size, 2_000):
            await store.add("bench", [f"memory {n}" for n in range(start, start + 2_000)
                                      if n < size])
        queries = [f"question {n}" for n in range(200)]
        timings = []
        for query in queries:
            started = time.perf_counter()
            await store.search("bench", query, k=4)
            timings.append((time.perf_counter() - started) * 1000)
        recall[str(size)] = percentiles(timings)
        index = store._load("bench").index
        recall[str(size)]["index"] = "exact" if is_exact(index) else "8-bit"
        if not is_exact(index):  # what the quantized index finds of the exact top 4
            vectors = unit_vectors(random, [f"memory {n}" for n in range(size)])
            hits = 0
            for query in queries[:50]:
                q = unit_vectors(random, [query])[0]
                exact = {f"memory {n}" for n in np.argsort(-(vectors @ q))[:4]}
                found = await store.search("bench", query, k=4)
                hits += len(exact & {m.record.text for m in found})
            recall[str(size)]["recall_at_4"] = round(hits / 200, 3)
    results["recall"] = recall

    # The checkpointer and durability Parley runs with (server/platform.py, server/turns.py).
    from langgraph.checkpoint.redis.ashallow import AsyncShallowRedisSaver

    graph_builder = bench_builder()
    async with AsyncShallowRedisSaver.from_conn_string(redis_url) as saver:
        await saver.asetup()
        graph = graph_builder.compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "bench:window"}}
        for _ in range(5):
            await graph.ainvoke({"messages": [HumanMessage("hi")]}, config,  # type: ignore[arg-type]
                                durability="exit")
        reads = []
        for _ in range(100):
            started = time.perf_counter()
            await saver.aget_tuple(config)  # type: ignore[arg-type]
            reads.append((time.perf_counter() - started) * 1000)
        turns = []
        for _ in range(30):
            started = time.perf_counter()
            await graph.ainvoke({"messages": [HumanMessage("hi")]}, config,  # type: ignore[arg-type]
                                durability="exit")
            turns.append((time.perf_counter() - started) * 1000)
    results["redis_window"] = {"read": percentiles(reads), "turn_with_checkpoints": percentiles(
        turns)}


def _timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


async def local_model_benchmark(results: dict[str, Any]) -> None:
    from agents.local_model import LocalChatModel, default_model_path, load_model

    prompt = "Write a short paragraph about the sea."
    llm, lock = load_model(default_model_path(), n_ctx=2048, n_threads=1)
    started, count = time.perf_counter(), 0
    with lock:
        for part in llm.create_chat_completion(messages=[{"role": "user", "content": prompt}],
                                               stream=True, temperature=0, max_tokens=128):
            count += bool(part["choices"][0]["delta"].get("content"))
    raw = count / (time.perf_counter() - started)
    model = LocalChatModel(model_path=str(default_model_path()), n_ctx=2048, n_threads=1,
                           temperature=0, max_tokens=128)
    started, chunks = time.perf_counter(), 0
    async for _chunk in model.astream(prompt):
        chunks += 1
    through = chunks / (time.perf_counter() - started)
    results["local_model"] = {"raw_tokens_per_s": round(raw, 1),
                              "parley_tokens_per_s": round(through, 1),
                              "ratio": round(through / raw, 3)}


def summarise(results: dict[str, Any]) -> str:
    base = results["in_process"]["p50"]

    def overhead(name: str) -> str:
        return f"{results[name]['p50'] - base:.2f}"

    rows = [("in-process `graph.ainvoke`", "in_process"), ("bare FastAPI", "bare"),
            ("plain LangServe `add_routes`", "langserve"),
            ("Parley `/chat` (auth, rate limit, memory)", "parley_chat"),
            ("Parley `/chat` without long-term memory", "parley_no_memory"),
            ("Parley LangServe route", "parley_langserve")]
    lines = [f"Run {results['date']} on {results['machine']}.", "",
             "| route | p50 ms | p99 ms | added p50 ms | first event ms | first token ms | "
             "turns/s c=1 / 8 / 32 | RSS MB |", "|---|---|---|---|---|---|---|---|"]
    for label, key in rows:
        r = results[key]
        stream = r.get("stream", {})
        tput = r.get("throughput", {})
        lines.append(
            f"| {label} | {r['p50']} | {r['p99']} | "
            f"{overhead(key) if key != 'in_process' else '-'} | "
            f"{stream.get('first_event', {}).get('p50', '-')} | "
            f"{stream.get('first_token', {}).get('p50', '-')} | "
            f"{' / '.join(str(tput[c]) for c in ('1', '8', '32')) if tput else '-'} | "
            f"{r.get('rss_mb', '-')} |")
    recall = results["recall"]
    lines += ["", "| semantic recall | p50 ms | p99 ms |", "|---|---|---|",
              f"| embed the query (MiniLM, numpy) | {recall['embed_query_ms']['p50']} | "
              f"{recall['embed_query_ms']['p99']} |"]
    lines += [f"| memory store search, {int(size):,} memories ({recall[size]['index']}"
              + (f", recall@4 {recall[size]['recall_at_4']}" if "recall_at_4" in recall[size]
                 else "") + f") | {recall[size]['p50']} | {recall[size]['p99']} |"
              for size in ("1000", "10000", "100000")]
    window = results["redis_window"]
    model = results["local_model"]
    lines += ["", f"Redis window read p50 {window['read']['p50']} ms; a whole turn with its "
              f"checkpoint writes p50 {window['turn_with_checkpoints']['p50']} ms.",
              f"Local model: {model['parley_tokens_per_s']} tokens/s through Parley, "
              f"{model['raw_tokens_per_s']} raw ({model['ratio']:.0%}).", ""]
    return "\n".join(lines + targets(results))


def targets(results: dict[str, Any]) -> list[str]:
    """The benchmark issue's targets, as ratios within this run."""
    base = results["in_process"]["p50"]
    added = {k: results[k]["p50"] - base for k in ("langserve", "parley_chat",
                                                  "parley_no_memory")}
    token = {k: results[k]["stream"]["first_token"]["p50"]
             for k in ("langserve", "parley_chat", "parley_no_memory")}
    tput = {k: results[k]["throughput"]["32"] for k in ("langserve", "parley_chat",
                                                        "parley_no_memory")}
    recall = results["recall"]["100000"]
    ratio = results["local_model"]["ratio"]

    def met(ok: bool) -> str:
        return "yes" if ok else "no"

    return [
        "| target | measured in this run | met |", "|---|---|---|",
        f"| Parley's added cost per turn ≤ LangServe's | {added['parley_chat']:.1f} ms "
        f"({added['parley_no_memory']:.1f} without long-term memory) vs "
        f"{added['langserve']:.1f} ms | {met(added['parley_chat'] <= added['langserve'])} |",
        f"| first answer token ≤ 1.2 x LangServe's | {token['parley_chat']:.1f} ms "
        f"({token['parley_no_memory']:.1f} without memory) vs {token['langserve']:.1f} ms: "
        f"{token['parley_chat'] / token['langserve']:.1f} x "
        f"({token['parley_no_memory'] / token['langserve']:.1f} x) | "
        f"{met(token['parley_chat'] <= 1.2 * token['langserve'])} |",
        f"| turns/s at c=32 ≥ LangServe's | {tput['parley_chat']:.0f} "
        f"({tput['parley_no_memory']:.0f} without memory) vs {tput['langserve']:.0f} | "
        f"{met(tput['parley_chat'] >= tput['langserve'])} |",
        f"| local model ≥ 95% of the raw runtime | {ratio:.0%} | {met(ratio >= 0.95)} |",
        f"| recall p99 ≤ 5 ms at 100,000 memories | {recall['p99']:.1f} ms "
        f"({recall['index']} index"
        + (f", {recall['recall_at_4']:.0%} of the exact top 4" if "recall_at_4" in recall
           else "") + f") | {met(recall['p99'] <= 5)} |", ""]


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    keys = ["in_process", "bare", "langserve", "parley_chat", "parley_no_memory",
            "parley_langserve"]
    labels = ["in-process", "bare FastAPI", "LangServe", "Parley /chat", "… no memory",
              "Parley LangServe"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    left.bar(labels, [results[k]["p50"] for k in keys], color="#1d3557", label="p50")
    left.scatter(labels, [results[k]["p99"] for k in keys], color="#e63946", label="p99",
                 zorder=3)
    left.set_ylabel("ms per turn")
    left.set_title("Latency of one turn (sequential)")
    left.legend()
    left.tick_params(axis="x", rotation=20)
    for key, label in (("bare", "bare"), ("langserve", "LangServe"),
                       ("parley_chat", "Parley /chat"),
                       ("parley_no_memory", "Parley /chat, no memory")):
        tput = results[key]["throughput"]
        right.plot([1, 8, 32], [tput["1"], tput["8"], tput["32"]], marker="o", label=label)
    right.set_xscale("log", base=2)
    right.set_xlabel("concurrent clients")
    right.set_ylabel("turns/s")
    right.set_title("Throughput")
    right.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


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
    data = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    redis = start_redis(data / "redis")
    try:
        await http_benchmarks(results, redis.url, data)
        await memory_benchmarks(results, redis.url, data)
        await local_model_benchmark(results)
    finally:
        redis.stop()
        shutil.rmtree(data, ignore_errors=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    (RESULTS / "summary.md").write_text(summarise(results))
    plot(results, RESULTS / "plot.png")
    print(summarise(results))


if __name__ == "__main__":
    asyncio.run(main())
