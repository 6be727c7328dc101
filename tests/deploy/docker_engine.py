"""A Docker engine for the tests that build and run the images: the one already running,
or a `dockerd` started here (as root) and stopped again afterwards. Without Docker the
test skips, naming the command that installs it (in CI, PARLEY_CI=1, it fails)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.system import missing, require


def answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True,
                              timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@contextmanager
def docker_engine(start_timeout: float = 90) -> Iterator[None]:
    """Yields with `docker` answering; stops the daemon on the way out only if it was
    started here (the containers it ran stop with it)."""
    dockerd = require("docker")
    if shutil.which("docker") is None:
        missing("the docker CLI is not on PATH: `sudo apt-get install -y docker.io`")
    if answers():
        yield
        return
    if os.geteuid() != 0:
        missing("no Docker engine answers and only root can start one: `sudo dockerd &`")
    log = Path(tempfile.mkstemp(prefix="parley-dockerd-", suffix=".log")[1])
    with log.open("wb") as out:
        daemon = subprocess.Popen([dockerd], stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + start_timeout
        while not answers():
            if daemon.poll() is not None or time.monotonic() > deadline:
                missing(f"dockerd did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(1)
        yield
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(120)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        log.unlink(missing_ok=True)
