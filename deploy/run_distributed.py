"""`make run-distributed`: the distributed topology as separate processes on 127.0.0.1 —
PostgreSQL (a throwaway cluster), Redis, the auth service, the history service with its
stream consumer, two agent servers, and nginx in front with the ingress routing."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from deploy.nginx_config import local_conf
from server.embedded.postgres_server import Postgres, start_postgres
from server.embedded.redis_server import EmbeddedRedis, free_port, start_redis


@dataclass
class Topology:
    root: Path
    url: str = ""  # nginx: what clients use
    direct: dict[str, str] = field(default_factory=dict)  # each service's own address
    postgres: Postgres | None = None
    redis: EmbeddedRedis | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = (self.root / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(args, env={**os.environ, **env}, stdout=log,
                                                stderr=subprocess.STDOUT)

    def kill(self, name: str) -> None:
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
        if self.redis:
            self.redis.stop()
        if self.postgres:
            self.postgres.stop()


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{log.name} exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready:\n{log.read_text()[-3000:]}")


def bring_up(root: Path, *, agent_env: dict[str, str] | None = None,
             port: int | None = None) -> Topology:
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)  # PostgreSQL runs as its own user when we are root
    topo = Topology(root=root)
    try:
        topo.postgres = start_postgres(root / "postgres")
        auth_db = topo.postgres.create_database("parley_auth")
        history_db = topo.postgres.create_database("parley_history")
        topo.redis = start_redis(root / "redis")
        python = sys.executable
        auth_port, history_port = free_port(), free_port()
        agent_ports = [free_port(), free_port()]
        # nginx is the only client: its X-Forwarded-For names the caller the login
        # limiter counts.
        topo.start("auth", [python, "-m", "uvicorn", "--factory", "services.auth.app:from_env",
                            "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1",
                            "--host", "127.0.0.1", "--port", str(auth_port)], {
            "PARLEY_AUTH_DATABASE_URL": auth_db, "PARLEY_AUTH_KEYS_DIR": str(root / "keys"),
            "PARLEY_AUTH_REDIS_URL": topo.redis.url})
        auth_url = f"http://127.0.0.1:{auth_port}"
        wait_for(f"{auth_url}/auth/readyz", topo.processes["auth"], root / "auth.log")
        topo.start("history", [python, "-m", "uvicorn", "--factory",
                               "services.history.app:from_env", "--host", "127.0.0.1",
                               "--port", str(history_port)], {
            "PARLEY_HISTORY_DATABASE_URL": history_db, "PARLEY_HISTORY_REDIS_URL":
                topo.redis.url,
            "PARLEY_HISTORY_JWKS_URL": f"{auth_url}/auth/.well-known/jwks.json"})
        wait_for(f"http://127.0.0.1:{history_port}/history/readyz",
                 topo.processes["history"], root / "history.log")
        # A report's chart is written by one replica and fetched through another: they
        # share the reports folder, as compose's `reports` volume has it.
        reports = root / "reports"
        reports.mkdir(exist_ok=True)
        for i in range(len(agent_ports)):
            link = root / f"agent{i + 1}" / "reports"
            link.parent.mkdir(exist_ok=True)
            if not link.exists():
                link.symlink_to(reports)
        for i, agent_port in enumerate(agent_ports):
            topo.start(f"agent{i + 1}", [python, "-m", "server.cli", "serve"], {
                "PARLEY_PORT": str(agent_port), "PARLEY_REDIS_URL": topo.redis.url,
                "PARLEY_AUTH_URL": auth_url, "PARLEY_MEMORY_ENGINE": "redis",
                "PARLEY_HISTORY_URL": f"http://127.0.0.1:{history_port}",
                "PARLEY_DATA_DIR": str(root / f"agent{i + 1}"), "PARLEY_LOG_FORMAT": "json",
                **(agent_env or {})})
        topo.direct.update({"auth": auth_url, "history": f"http://127.0.0.1:{history_port}"})
        for i, agent_port in enumerate(agent_ports):
            topo.direct[f"agent{i + 1}"] = f"http://127.0.0.1:{agent_port}"
            wait_for(f"http://127.0.0.1:{agent_port}/readyz", topo.processes[f"agent{i + 1}"],
                     root / f"agent{i + 1}.log")
        listen = port or free_port()
        nginx_root = root / "nginx"
        nginx_root.mkdir(exist_ok=True)
        conf = local_conf(nginx_root, listen=f"127.0.0.1:{listen}",
                          agents=[f"127.0.0.1:{p}" for p in agent_ports],
                          auth=f"127.0.0.1:{auth_port}", history=f"127.0.0.1:{history_port}")
        (nginx_root / "nginx.conf").write_text(conf)
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        subprocess.run([nginx, "-t", "-c", str(nginx_root / "nginx.conf"), "-p",
                        str(nginx_root)], check=True, capture_output=True)
        topo.start("nginx", [nginx, "-c", str(nginx_root / "nginx.conf"), "-p", str(nginx_root),
                             "-g", "daemon off;"], {})
        topo.url = f"http://127.0.0.1:{listen}"
        wait_for(f"{topo.url}/healthz", topo.processes["nginx"], root / "nginx.log")
        return topo
    except BaseException:
        topo.stop()
        raise


def main() -> None:  # pragma: no cover - interactive
    root = Path(tempfile.mkdtemp(prefix="parley-distributed-"))
    root.chmod(0o755)
    topo = bring_up(root, port=8000)
    print(f"Parley (distributed) on {topo.url}: nginx -> 2 agent servers, auth, history, "
          f"PostgreSQL, Redis. Logs in {root}. Ctrl-C stops everything.", flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        topo.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
