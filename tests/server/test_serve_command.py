"""`parley serve` as `make run` starts it: a real process with the Redis it starts itself."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx

from tests.support.serve import parley_serve, sign_up


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
    env = {"PARLEY_LLM": "fake", "PARLEY_FAKE_SCRIPT": str(script)}
    with parley_serve(tmp_path, env) as served:
        url, redis_pid = served.url, served.redis_pid
        assert redis_pid is not None and alive(redis_pid)
        ready = httpx.get(f"{url}/readyz").json()
        assert ready["checks"]["redis"] == "ok"
        ada = sign_up(url, "ada")
        unauthenticated = httpx.post(f"{url}/chat", json={"message": "hi"})
        assert unauthenticated.status_code == 401
        first = httpx.post(f"{url}/chat", json={"message": "remember the lighthouse"},
                           headers=ada, timeout=30).json()
        assert first["message"]["content"] == "Your first message was: remember the lighthouse"
        thread = first["thread_id"]
    # Stopping the server stopped its Redis, by pid.
    deadline = time.monotonic() + 15
    while alive(redis_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(redis_pid)
    assert (tmp_path / "redis" / "appendonlydir").is_dir()

    # The thread lives on in Redis's append-only file across a restart.
    with parley_serve(tmp_path, env) as served:
        url = served.url
        ada = sign_up(url, "ada")  # the account survived the restart too
        state = httpx.post(f"{url}/chat", json={"message": "again", "thread_id": thread},
                           headers=ada, timeout=30).json()
        assert state["thread_id"] == thread
        assert state["message"]["content"] == "Your first message was: remember the lighthouse"
        fresh = httpx.post(f"{url}/chat", json={"message": "new here"}, headers=ada,
                           timeout=30).json()
        # Turns reach the history service through the stream, a moment later.
        expected = {thread, fresh["thread_id"]}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            threads = httpx.get(f"{url}/history/threads", headers=ada).json()
            if {t["id"] for t in threads} == expected:
                break
            time.sleep(0.1)
        assert {t["id"] for t in threads} == expected
        assert fresh["message"]["content"] == "Your first message was: new here"


def test_serve_says_how_to_configure_a_missing_model(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {**os.environ, "PARLEY_LLM": "openai-compatible:llama3",
           "PARLEY_DATA_DIR": str(tmp_path)}
    env.pop("PARLEY_LLM_BASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "server.cli", "serve"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "PARLEY_LLM_BASE_URL" in done.stderr
    assert not (tmp_path / "redis").exists()  # nothing was started
