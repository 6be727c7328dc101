"""The embedded Redis through faults, on a real `parley serve`: the server killed with -9
leaves an orphan redis-server, which the next start on the same folder stops before it
starts its own; a second server on a folder in use is refused; a redis-server that dies
is started again, threads and all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from server.embedded.redis_server import serves
from tests.server.test_serve_command import alive
from tests.support.serve import parley_serve, sign_up


def redis_servers_on(folder: Path) -> list[int]:
    """Pids of the live redis-servers serving `folder` (whoever started them)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            status = (proc / "status").read_text()
        except OSError:
            continue
        if serves(int(proc.name), folder.resolve()) and "zombie" not in status:
            found.append(int(proc.name))
    return found


def wait_until(check, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def echo_env(tmp_path: Path) -> dict[str, str]:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"echo": "first"}]))
    return {"PARLEY_LLM": "fake", "PARLEY_FAKE_SCRIPT": str(script)}


def test_a_restart_after_a_crash_stops_the_orphan_and_loses_no_turn(tmp_path: Path) -> None:
    env = echo_env(tmp_path)
    with parley_serve(tmp_path, env) as served:
        ada = sign_up(served.url, "ada")
        answered = [httpx.post(f"{served.url}/chat", headers=ada, timeout=30,
                               json={"message": f"turn {i}", "thread_id": "kept"}).json()
                    for i in range(3)]
        assert all(a["error"] is None for a in answered)
        orphan = served.redis_pid
        os.kill(served.pid, signal.SIGKILL)  # no shutdown: its redis-server lives on
        assert wait_until(lambda: not alive(served.pid))
        assert orphan is not None and alive(orphan)
    with parley_serve(tmp_path, env) as served:
        assert wait_until(lambda: not alive(orphan))
        assert redis_servers_on(tmp_path / "redis") == [served.redis_pid]
        ada = sign_up(served.url, "ada")
        again = httpx.post(f"{served.url}/chat", headers=ada, timeout=30,
                           json={"message": "and now?", "thread_id": "kept"}).json()
        assert again["message"]["content"] == "Your first message was: turn 0"

        def stored() -> list[str]:
            page = httpx.get(f"{served.url}/history", headers=ada,
                             params={"thread_id": "kept", "limit": 50}).json()
            return [m["content"] for m in page.get("messages", []) if m["role"] == "user"]

        # Every turn the client was told was done before the crash is in history.
        assert wait_until(lambda: {"turn 0", "turn 1", "turn 2"} <= set(stored()))


def test_a_second_server_on_a_folder_in_use_is_refused(tmp_path: Path) -> None:
    env = echo_env(tmp_path)
    with parley_serve(tmp_path, env) as served:
        second = subprocess.run(
            [sys.executable, "-m", "server.cli", "serve"], capture_output=True, text=True,
            timeout=120, env={**os.environ, **env, "PARLEY_DATA_DIR": str(tmp_path),
                              "PARLEY_PORT": "1"})
        assert second.returncode != 0
        assert "another Parley server" in second.stdout + second.stderr
        assert httpx.get(f"{served.url}/readyz").status_code == 200  # the first goes on
        assert redis_servers_on(tmp_path / "redis") == [served.redis_pid]


def test_a_redis_server_that_dies_is_started_again(tmp_path: Path) -> None:
    env = echo_env(tmp_path)
    with parley_serve(tmp_path, env) as served:
        ada = sign_up(served.url, "ada")
        first = httpx.post(f"{served.url}/chat", headers=ada, timeout=30,
                           json={"message": "remember the lighthouse", "thread_id": "t"})
        assert first.json()["error"] is None
        assert served.redis_pid is not None
        os.kill(served.redis_pid, signal.SIGKILL)
        assert wait_until(lambda: redis_servers_on(tmp_path / "redis")
                          not in ([], [served.redis_pid]))
        assert wait_until(lambda: httpx.get(f"{served.url}/readyz").status_code == 200)
        again = httpx.post(f"{served.url}/chat", headers=ada, timeout=30,
                           json={"message": "what was first?", "thread_id": "t"}).json()
        log = served.log.read_text()
    assert again["message"]["content"] == "Your first message was: remember the lighthouse"
    assert "redis-server started again" in log
