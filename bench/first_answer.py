"""A newcomer's wait, measured: from `git clone` to the first answer of `make run`.

The repository's committed HEAD is cloned into a temporary folder and `make run` started
there, as the README's quick start says, with an empty package cache of its own (every
wheel downloaded, as on a fresh machine) and then again with that cache warm (a second
clone on the same machine). The clock stops when `/chat` has answered a first message
of a newly registered user with the default local model. Part of `make bench`; run alone
with `python -m bench.first_answer`, which adds its figures to bench/results/.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from server.embedded.redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
LIMIT_S = 900.0  # give up past this: something is broken, not slow


def _all_cores() -> None:
    # `make bench` pins itself to one core; a newcomer's `make run` has the machine.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, range(os.cpu_count() or 1))


def clone_to_first_answer(work: Path, cache: Path) -> dict[str, Any]:
    """Seconds from the start of `git clone` to: the install done, the server ready, the
    first answer."""
    started = time.perf_counter()
    clone = work / "parley"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PARLEY_", "VIRTUAL_ENV", "UV_"))}
    env.update({"PARLEY_PORT": str(port), "UV_CACHE_DIR": str(cache),
                "PIP_NO_CACHE_DIR": "1"})
    log = work / "make-run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["make", "run"], cwd=clone, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_all_cores)
    url = f"http://127.0.0.1:{port}"
    try:
        installed = ready = None
        while ready is None:
            if proc.poll() is not None or time.perf_counter() - started > LIMIT_S:
                raise RuntimeError(f"make run did not come up:\n{log.read_text()[-3000:]}")
            if installed is None and (clone / ".venv" / ".installed").exists():
                installed = time.perf_counter() - started
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    ready = time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        account = {"username": "newcomer", "password": "a long enough password"}
        httpx.post(f"{url}/auth/register", json=account, timeout=30).raise_for_status()
        token = httpx.post(f"{url}/auth/login", json=account,
                           timeout=30).json()["access_token"]
        reply = httpx.post(f"{url}/chat", json={"message": "Hello! What can you do?"},
                           headers={"Authorization": f"Bearer {token}"}, timeout=300)
        reply.raise_for_status()
        answered = time.perf_counter() - started
        answer = reply.json()["message"]["content"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return {"install_s": round(installed or ready, 1), "ready_s": round(ready, 1),
            "first_answer_s": round(answered, 1), "answer": answer[:120]}


def first_answer_benchmark(results: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory(prefix="parley-clone-") as folder:
        cache = Path(folder) / "uv-cache"
        cold_work, warm_work = Path(folder) / "cold", Path(folder) / "warm"
        cold_work.mkdir()
        warm_work.mkdir()
        cold = clone_to_first_answer(cold_work, cache)
        warm = clone_to_first_answer(warm_work, cache)
    results["first_answer"] = {"cold_cache": cold, "warm_cache": warm}


def summary_lines(results: dict[str, Any]) -> list[str]:
    if "first_answer" not in results:
        return []
    lines = ["", "| from `git clone` to | install done s | server ready s | first answer s |",
             "|---|---|---|---|"]
    for label, key in (("a fresh machine (empty package cache)", "cold_cache"),
                       ("a second clone (warm package cache)", "warm_cache")):
        r = results["first_answer"][key]
        lines.append(f"| {label} | {r['install_s']} | {r['ready_s']} | "
                     f"{r['first_answer_s']} |")
    return lines


def main() -> None:
    from bench.report import summarise

    latest = RESULTS / "latest.json"
    results = json.loads(latest.read_text()) if latest.exists() else {}
    first_answer_benchmark(results)
    latest.write_text(json.dumps(results, indent=2))
    (RESULTS / "summary.md").write_text(summarise(results))
    print("\n".join(summary_lines(results)))


if __name__ == "__main__":
    main()
