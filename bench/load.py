"""The load figures of `make bench`: a real `parley serve` (embedded shape, scripted
model, memory on) under 1,000 concurrent chat streams and then a burst of 200 new users.
Errors (anything but a complete turn or a 503/429 refusal up front), refusals, time to
the first event and the server's peak memory. tests/server/test_load.py asserts the
same at a smaller size."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

from bench.load_client import client_for, concurrent_streams, login, new_users_burst
from server.embedded.redis_server import free_port

STREAMS = 1_000
NEW_USERS = 200
DISTRIBUTED_NEW_USERS = 100


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


@contextmanager
def whole_machine() -> Iterator[None]:
    """`make bench` pins itself to one core for the route timings (servers on the other);
    the load figures are of the whole machine, as in production: the servers it starts
    here (and the distributed topology's processes) inherit this process's cores, so it
    gives them, and its own clients, every core for the duration."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    pinned = os.sched_getaffinity(0)
    _every_thread_on(set(range(os.cpu_count() or 1)))
    try:
        yield
    finally:
        _every_thread_on(pinned)


def _every_thread_on(cores: set[int]) -> None:
    # Affinity is a thread's, and children inherit the one of the thread that starts them
    # (servers are started from the event loop's worker threads).
    for tid in os.listdir("/proc/self/task"):
        with suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(tid), cores)


async def load_benchmarks(results: dict[str, Any]) -> None:
    with whole_machine():
        await _embedded_load(results)
        await distributed_load(results)


async def _embedded_load(results: dict[str, Any]) -> None:
    data = Path(tempfile.mkdtemp(prefix="parley-load-"))
    script = data / "script.json"
    script.write_text(json.dumps(["Fine, thanks for asking."]))
    env, url = serve_env(data, script)
    server = await asyncio.to_thread(_start, env, url, data / "serve.log")
    try:
        async with client_for(url, 20) as client:
            users = [await login(client, f"load{i}") for i in range(20)]
        streams = await concurrent_streams(url, users, STREAMS)
        burst = await new_users_burst(url, NEW_USERS)
        results["load"] = {"streams": streams.summary(), "new_users": burst.summary(),
                           "peak_rss_mb": _peak_rss_mb(server.pid),
                           "max_concurrent_turns": 64}
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.to_thread(_wait_or_kill, server)


async def distributed_load(results: dict[str, Any]) -> None:
    """A burst of new users through nginx in front of two agent servers, auth and history
    on PostgreSQL (`make run-distributed`'s topology as processes, scripted model): the
    shape where the first event once took 12 s (the profile fetched per request through a
    5-connection pool). Skipped, saying why, without nginx or PostgreSQL."""
    import shutil

    from deploy.run_distributed import bring_up

    root = Path(tempfile.mkdtemp(prefix="parley-load-dist-"))
    os.chmod(root, 0o755)  # PostgreSQL runs as its own user when we are root
    script = root / "script.json"
    script.write_text(json.dumps(["Fine, thanks for asking."]))
    try:
        topology = await asyncio.to_thread(
            bring_up, root / "run", agent_env={"PARLEY_LLM": "fake",
                                               "PARLEY_FAKE_SCRIPT": str(script),
                                               "PARLEY_RATE_LIMIT_PER_MINUTE": "0",
                                               "PARLEY_LOG_LEVEL": "WARNING"})
    except Exception as exc:  # no PostgreSQL binaries, a port taken: say why
        results["load"]["distributed"] = {"skipped": f"{type(exc).__name__}: {exc}"[:200]}
        return
    try:
        burst = await new_users_burst(topology.url, DISTRIBUTED_NEW_USERS, prefix="dist")
        results["load"]["distributed"] = {"new_users": burst.summary()}
    finally:
        await asyncio.to_thread(topology.stop)
        shutil.rmtree(root, ignore_errors=True)


def serve_env(data: Path, script: Path) -> tuple[dict[str, str], str]:
    """The environment of an embedded `parley serve` on a free port with the scripted
    model and no rate limit, and its address."""
    port = free_port()
    env = {**os.environ, "PARLEY_DATA_DIR": str(data), "PARLEY_PORT": str(port),
           "PARLEY_LLM": "fake", "PARLEY_FAKE_SCRIPT": str(script),
           "PARLEY_RATE_LIMIT_PER_MINUTE": "0", "PARLEY_LOG_LEVEL": "WARNING"}
    env.pop("PARLEY_REDIS_URL", None)
    return env, f"http://127.0.0.1:{port}"


def _wait_or_kill(server: subprocess.Popen[bytes]) -> None:
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()


def _start(env: dict[str, str], url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "server.cli", "serve"], env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise RuntimeError(f"parley serve did not start: see {log}")
        time.sleep(0.2)


def load_summary(results: dict[str, Any]) -> list[str]:
    load = results.get("load")
    if not load:
        return []
    lines = ["| under load (embedded, 64 turn slots) | requests | completed | refused 503/429 "
             "| errors | first event p50 / p99 s |", "|---|---|---|---|---|---|"]
    for key, label in (("streams", f"{STREAMS:,} concurrent `/chat/stream`"),
                       ("new_users", f"{NEW_USERS} new users: register, log in, chat")):
        r = load[key]
        first = r.get("first_event_s") or {}
        lines.append(f"| {label} | {r['requests']} | {r['completed']} | {r['refused']} | "
                     f"{r['errors']} | {first.get('p50', '-')} / {first.get('p99', '-')} |")
    dist = load.get("distributed", {})
    if "new_users" in dist:
        r = dist["new_users"]
        first = r.get("first_event_s") or {}
        lines.append(f"| {DISTRIBUTED_NEW_USERS} new users through nginx (2 agent servers, "
                     f"auth and history on PostgreSQL) | {r['requests']} | {r['completed']} | "
                     f"{r['refused']} | {r['errors']} | {first.get('p50', '-')} / "
                     f"{first.get('p99', '-')} |")
    elif dist:
        lines += ["", f"The distributed burst was skipped: {dist['skipped']}."]
    lines += ["", f"Server peak memory under that load: {load['peak_rss_mb']} MB.", ""]
    return lines
