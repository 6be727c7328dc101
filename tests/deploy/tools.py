"""Where the deployment checkers are: the venv's console scripts (check-jsonschema,
kubernetes-validate, hadolint from PyPI), and nginx and the docker-compose plugin, which
`make test` installs (.ci/system-tools). Outside CI a missing one skips its test; in CI
(PARLEY_CI=1) it fails."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support.system import missing, require

ROOT = Path(__file__).resolve().parents[2]


def venv_tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        missing(f"{name} is not installed (`make install` puts it in the venv)")
    return str(path)


def compose_binary() -> str:
    return require("docker-compose")


def nginx_binary() -> str:
    return require("nginx")
