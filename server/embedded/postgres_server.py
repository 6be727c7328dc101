"""A throwaway PostgreSQL cluster (initdb + pg_ctl) on a free 127.0.0.1 port, for tests and
`make run-distributed`."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from server.embedded.redis_server import free_port


def pg_bin_dir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not candidates:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
    return Path(candidates[-1]).parent


@dataclass
class Postgres:
    data_dir: Path
    port: int
    bin_dir: Path
    user: str = "parley"
    run_as: list[str] = field(default_factory=list)

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        subprocess.run(
            [str(self.bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
             "-U", self.user, name],
            check=True, capture_output=True,
        )
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            [*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir),
             "-m", "immediate", "stop"],
            capture_output=True, env=_env(),
        )


def _env() -> dict[str, str]:
    return {**os.environ, "LC_ALL": "C.UTF-8"}


def start_postgres(data_dir: Path) -> Postgres:
    """initdb a new cluster under `data_dir` and start it; works as root by running as the
    cluster's owner only when needed (PostgreSQL refuses to run as root)."""
    bin_dir = pg_bin_dir()
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    pg = Postgres(data_dir=data_dir / "pgdata", port=port, bin_dir=bin_dir)
    run_as: list[str] = []
    if os.geteuid() == 0:
        # PostgreSQL will not run as root: hand the folder to the `postgres` system user.
        shutil.chown(data_dir, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*run_as, str(bin_dir / "initdb"), "-D", str(pg.data_dir), "-U", pg.user,
         "--auth=trust", "--no-sync", "-E", "UTF8"],
        check=True, capture_output=True, env=_env(),
    )
    subprocess.run(
        [*run_as, str(bin_dir / "pg_ctl"), "-D", str(pg.data_dir), "-w", "-t", "30",
         "-l", str(data_dir / "postgres.log"),
         "-o", f"-h 127.0.0.1 -p {port} -k {data_dir} -F -c fsync=off",
         "start"],
        check=True, capture_output=True, env=_env(),
    )
    if run_as:
        pg.run_as = run_as
    return pg
