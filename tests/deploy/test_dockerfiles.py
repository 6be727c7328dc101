"""The images' Dockerfiles, checked without a Docker engine: hadolint's lint, and what a
reviewer would check by eye — multi-stage, the final images run as a non-root user with a
health check and no compilers, copy only files that exist and are in the build context,
bake in no secret, and install the same pinned versions the tests ran against."""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.deploy.tools import ROOT, venv_tool

DOCKERFILES = sorted((ROOT / "deploy/docker").glob("*.Dockerfile"))
# Final images: the last stage of the agent's file, the named targets of the services'.
FINAL = {"agent.Dockerfile": ["<last>"], "services.Dockerfile": ["auth", "history"]}
BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|cmake|make|clang)\b")
SECRET_NAMES = re.compile(r"PASSWORD|SECRET|API_KEY|TOKEN|PRIVATE", re.I)


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse(path: Path) -> list[Stage]:
    # As Docker reads it: comment lines go first, even inside a continued instruction.
    lines = [line for line in path.read_text().splitlines()
             if not line.strip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) > 2 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(base=words[0], name=name))
        elif stages:
            stages[-1].instructions.append((keyword, rest.strip()))
    return stages


def chain(stages: list[Stage], name: str) -> list[Stage]:
    """The stage and the stages it is built on, nearest first."""
    by_name = {s.name: s for s in stages}
    stage = stages[-1] if name == "<last>" else by_name[name]
    found = [stage]
    while stage.base in by_name:
        stage = by_name[stage.base]
        found.append(stage)
    return found


def dockerignore_allows(path: str) -> bool:
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    allowed = False
    for pattern in lines:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if pattern == "*" or path == pattern or path.startswith(pattern + "/"):
            allowed = negate
    return allowed


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(path: Path) -> None:
    result = subprocess.run([venv_tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"),
                             "--no-color", str(path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_final_images(path: Path) -> None:
    stages = parse(path)
    assert len(stages) >= 2, "multi-stage: build in one stage, run from a clean one"
    for target in FINAL[path.name]:
        images = chain(stages, target)
        instructions = [i for stage in reversed(images) for i in stage.instructions]
        users = [rest for keyword, rest in instructions if keyword == "USER"]
        assert users, f"{target}: no USER"
        uid = users[-1].split(":")[0]
        assert uid.isdigit() and int(uid) != 0, f"{target}: runs as {users[-1]}"
        assert any(k == "HEALTHCHECK" for k, _ in instructions), f"{target}: no HEALTHCHECK"
        assert any(k == "CMD" for k, _ in images[0].instructions), f"{target}: no CMD"
        for keyword, rest in instructions:
            if keyword == "RUN":
                assert not BUILD_TOOLS.search(rest), f"{target}: build tools in {rest}"
            if keyword in ("ENV", "ARG"):
                names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", rest) or [rest.split()[0]]
                assert not [n for n in names if SECRET_NAMES.search(n)], \
                    f"{target}: a secret baked in: {rest}"
        # Behind the ingress: each service must see the browser's address (login limits
        # count failures per address), so it trusts the proxy's X-Forwarded-For.
        env = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
        assert 'FORWARDED_ALLOW_IPS="*"' in env, f"{target}: proxy headers not trusted"
        # Only the build stage's output crosses over: no source tree, no compiler.
        copied_from = [rest for keyword, rest in instructions if keyword == "COPY"
                       and rest.startswith("--from=")]
        assert copied_from, f"{target}: copies nothing from the build stage"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_copied_files_exist_and_are_in_the_context(path: Path) -> None:
    for stage in parse(path):
        for keyword, rest in stage.instructions:
            if keyword != "COPY" or rest.startswith("--from="):
                continue
            words = [w for w in shlex.split(rest) if not w.startswith("--")]
            for source in words[:-1]:
                assert (ROOT / source).exists(), f"{path.name}: COPY {source}: no such file"
                assert dockerignore_allows(source), \
                    f"{path.name}: COPY {source}: left out by .dockerignore"


def test_every_package_is_copied_into_the_agent_image() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]
                ["include"]]
    copied = {rest.split()[0] for stage in parse(ROOT / "deploy/docker/agent.Dockerfile")
              for keyword, rest in stage.instructions if keyword == "COPY"}
    assert set(packages) <= copied


def pins(path: Path) -> set[str]:
    return {line.split()[0] for line in path.read_text().splitlines()
            if re.match(r"[A-Za-z0-9]", line)}


@pytest.mark.parametrize("lock", ["requirements-runtime.lock", "requirements-services.lock"])
def test_image_locks_pin_what_the_tests_ran(lock: str) -> None:
    """The images install the versions `make test` installed (`make lock` keeps them so)."""
    drift = pins(ROOT / lock) - pins(ROOT / "requirements.lock")
    assert not drift, f"{lock} differs from requirements.lock: {sorted(drift)}; run make lock"


def test_compose_targets_are_stages() -> None:
    names = {s.name for s in parse(ROOT / "deploy/docker/services.Dockerfile")}
    compose = (ROOT / "compose.yaml").read_text()
    for target in re.findall(r"target: (\w+)", compose):
        assert target in names


def test_volume_mount_points_belong_to_the_service_user() -> None:
    """A named volume takes the owner of the folder it is mounted on from the image: a
    folder the image lacks comes up owned by root, and the non-root service cannot write."""
    import yaml

    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        build = service.get("build")
        if not build:
            continue
        stages = parse(ROOT / build["dockerfile"])
        runs = " ".join(rest for stage in chain(stages, build.get("target", "<last>"))
                        for keyword, rest in stage.instructions if keyword == "RUN")
        for volume in service.get("volumes", []):
            target = volume.split(":")[1]
            assert re.search(rf"install -d -o parley -g parley( -m \d+)? {target}\b", runs), \
                f"{name}: {target} is not made in the image for the service's user"
