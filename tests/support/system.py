"""The system tools some tests need (PostgreSQL, Chromium, nginx, the docker-compose
plugin), read from `.ci/system-tools`, the list `.ci/install-system-tools` installs from,
so a test and the installer cannot disagree about a tool's name or package.

A test asks for its tool with `require(name)`. When the tool is missing, the test skips
and names the one command that installs it; in CI (PARLEY_CI=1), where `make test` has
just installed every tool, it fails instead."""

from __future__ import annotations

import glob
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / ".ci" / "system-tools"


@dataclass(frozen=True)
class SystemTool:
    name: str
    installer: str  # "apt:<package>" or "script:<path from the repository root>"
    probes: tuple[str, ...]  # commands on PATH, or absolute paths and globs of files

    def find(self) -> str | None:
        """The first probe that names an executable file, as the installer looks; an
        absolute path may also name a data file (a language pair has no program)."""
        for probe in self.probes:
            probe = str(Path(probe).expanduser()) if probe.startswith("~") else probe
            if probe.startswith("/"):
                for path in sorted(glob.glob(probe)):
                    if Path(path).is_file():
                        return path
            elif found := shutil.which(probe):
                return found
        return None

    def install_command(self) -> str:
        kind, _, what = self.installer.partition(":")
        if kind == "apt":
            return f"sudo apt-get install -y {what}"
        return f"sudo bash {what}"


def read_manifest(path: Path = MANIFEST) -> dict[str, SystemTool]:
    tools: dict[str, SystemTool] = {}
    for line in path.read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        name, installer, *probes = words
        tools[name] = SystemTool(name, installer, tuple(probes))
    return tools


def missing(message: str, *, ci: bool | None = None) -> NoReturn:
    """Skip the test for a missing tool, or fail it in CI, where nothing may be missing."""
    in_ci = bool(os.environ.get("PARLEY_CI")) if ci is None else ci
    if in_ci:
        pytest.fail(message)
    pytest.skip(message)


def require(name: str, *, manifest: Path = MANIFEST, ci: bool | None = None) -> str:
    """The path of the system tool `name`; skips (or fails in CI) when it is missing."""
    tool = read_manifest(manifest)[name]
    found = tool.find()
    if found is None:
        missing(f"{name} is not installed: `{tool.install_command()}` installs it "
                "(`make test` does, when run as root)", ci=ci)
    return found
