"""Run `parley serve` as a real process, as `make run` does, until the block ends."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from server.embedded.redis_server import free_port


@dataclass
class Served:
    url: str
    redis_pid: int | None
    log: Path
    pid: int  # the server process's own


@contextmanager
def parley_serve(data_dir: Path, env: dict[str, str] | None = None,
                 ready_timeout: float = 180.0) -> Iterator[Served]:
    port = free_port()
    full_env = {**os.environ, "PARLEY_DATA_DIR": str(data_dir), "PARLEY_PORT": str(port),
                **(env or {})}
    if "PARLEY_REDIS_URL" not in (env or {}):
        full_env.pop("PARLEY_REDIS_URL", None)
    log = data_dir / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve"], env=full_env,
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
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
        yield Served(url=url, redis_pid=int(match.group(1)) if match else None, log=log,
                     pid=proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def sign_up(url: str, username: str, password: str = "a long enough password") -> dict[str, str]:
    """Register (if new) and log in on a running server; returns the Authorization header."""
    httpx.post(f"{url}/auth/register", json={"username": username, "password": password})
    response = httpx.post(f"{url}/auth/login", json={"username": username,
                                                     "password": password})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
