"""End to end through nginx, as `make run-distributed` runs it: PostgreSQL, Redis, auth,
history, two agent servers. One agent server is killed mid-conversation; the other goes
on with the same thread, and history has every turn."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from httpx_sse import connect_sse

from deploy.run_distributed import Topology, bring_up
from tests.support.system import require


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    require("nginx")
    require("postgresql")
    root = Path(tempfile.mkdtemp(prefix="parley-e2e-"))
    root.chmod(0o755)  # PostgreSQL runs as its own user and must reach its folder
    script = root / "script.json"
    script.write_text(json.dumps([{"echo": "first"}]))
    topo = bring_up(root / "run", agent_env={"PARLEY_LLM": "fake",
                                             "PARLEY_FAKE_SCRIPT": str(script)})
    try:
        yield topo
    finally:
        topo.stop()
        shutil.rmtree(root, ignore_errors=True)


def stream(client: httpx.Client, url: str, headers: dict[str, str], body: dict) -> list:
    with connect_sse(client, "POST", f"{url}/chat/stream", json=body,
                     headers=headers) as source:
        assert source.response.status_code == 200
        return [(e.event, json.loads(e.data)) for e in source.iter_sse()]


def test_through_nginx_with_a_replica_killed(topology: Topology) -> None:
    url = topology.url
    with httpx.Client(timeout=30) as client:
        created = client.post(f"{url}/auth/register",
                              json={"username": "ada", "password": "a long enough password"})
        assert created.status_code == 201, created.text
        tokens = client.post(f"{url}/auth/login", json={
            "username": "ada", "password": "a long enough password"}).json()
        ada = {"Authorization": f"Bearer {tokens['access_token']}"}
        first = stream(client, url, ada, {"message": "the meeting is on Friday"})
        names = [n for n, _ in first]
        assert names[0] == "token" and names[-2:] == ["message", "done"]
        thread = first[-1][1]["thread_id"]
        replies = []
        for i, agent in enumerate(("agent1", None, None)):
            if agent:
                topology.kill(agent)  # one replica dies mid-conversation
            turn = client.post(f"{url}/chat", headers=ada, json={
                "message": f"follow-up {i}", "thread_id": thread}).json()
            replies.append(turn["message"]["content"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            page = client.get(f"{url}/history", headers=ada,
                              params={"thread_id": thread, "limit": 50})
            if page.status_code == 200 and len(page.json()["messages"]) == 8:
                break
            time.sleep(0.2)
        hidden = client.get(f"{url}/metrics")  # the ingress does not publish metrics
        metrics = client.get(f"{topology.direct['agent2']}/metrics").text
        unauthenticated = client.post(f"{url}/chat", json={"message": "hi"})
    # The surviving replica continued the same thread from the shared Redis.
    assert replies == ["Your first message was: the meeting is on Friday"] * 3
    contents = [m["content"] for m in reversed(page.json()["messages"])]
    assert contents[0] == "the meeting is on Friday" and len(contents) == 8  # nothing lost
    assert hidden.status_code == 404
    served = re.search(r'parley_turns_total\{agent="assistant",outcome="ok"\} (\d+)', metrics)
    assert served and int(served.group(1)) >= 3  # the survivor took every later turn
    assert unauthenticated.status_code == 401
