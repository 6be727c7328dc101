"""`parley serve` as `make run` starts it: a real process with the Redis it starts itself."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from server.embedded.redis_server import free_port


@contextmanager
def parley_serve(data_dir: Path, script: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {**os.environ, "PARLEY_LLM": "fake", "PARLEY_FAKE_SCRIPT": str(script),
           "PARLEY_DATA_DIR": str(data_dir), "PARLEY_PORT": str(port)}
    env.pop("PARLEY_REDIS_URL", None)
    log = data_dir / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        match = re.search(r"started redis-server \(pid (\d+)\)", log.read_text())
        assert match, log.read_text()
        yield url, int(match.group(1))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of a finished process counts as gone.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def test_serve_starts_redis_keeps_threads_across_restarts(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"echo": "first"}]))
    with parley_serve(tmp_path, script) as (url, redis_pid):
        assert alive(redis_pid)
        ready = httpx.get(f"{url}/readyz").json()
        assert ready["checks"]["redis"] == "ok"
        first = httpx.post(f"{url}/chat", json={"message": "remember the lighthouse"},
                           timeout=30).json()
        assert first["message"]["content"] == "Your first message was: remember the lighthouse"
        thread = first["thread_id"]
    # Stopping the server stopped its Redis, by pid.
    deadline = time.monotonic() + 15
    while alive(redis_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(redis_pid)
    assert (tmp_path / "redis" / "appendonlydir").is_dir()

    # The thread lives on in Redis's append-only file across a restart.
    with parley_serve(tmp_path, script) as (url, _pid):
        state = httpx.post(f"{url}/chat", json={"message": "again", "thread_id": thread},
                           timeout=30).json()
        assert state["thread_id"] == thread
        assert state["message"]["content"] == "Your first message was: remember the lighthouse"
        fresh = httpx.post(f"{url}/chat", json={"message": "new here"}, timeout=30).json()
        assert fresh["message"]["content"] == "Your first message was: new here"
