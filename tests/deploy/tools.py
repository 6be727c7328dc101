"""Where the deployment checkers are: the venv's console scripts (check-jsonschema,
kubernetes-validate, hadolint from PyPI) and the docker-compose plugin `.ci/install-compose`
puts in place. Outside CI a missing one skips its test; in CI (PARLEY_CI=1) it fails."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIRS = ("/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
               "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins",
               str(Path.home() / ".docker/cli-plugins"))


def missing(what: str, how: str) -> None:
    message = f"{what} is not installed ({how})"
    if os.environ.get("PARLEY_CI"):
        pytest.fail(message)
    pytest.skip(message)


def venv_tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        missing(name, "make install puts it in the venv")
    return str(path)


def compose_binary() -> str:
    for folder in PLUGIN_DIRS:
        if os.access(Path(folder) / "docker-compose", os.X_OK):
            return str(Path(folder) / "docker-compose")
    found = shutil.which("docker-compose")
    if found is None:
        missing("the docker-compose plugin", "bash .ci/install-compose")
    return str(found)


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                      else None)
    if found is None:
        missing("nginx", "apt-get install nginx-light")
    return str(found)
