"""LangSmith tracing is a switch: with LANGSMITH_TRACING set, a real `parley serve` sends
its runs to the LangSmith endpoint (here a recording server on 127.0.0.1); without it, the
same turn sends nothing, though the endpoint and a key are set."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.replay_server import Replay, replay_server
from tests.support.serve import parley_serve, sign_up

LANGSMITH_VARIABLES = ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGSMITH_ENDPOINT",
                       "LANGCHAIN_ENDPOINT", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY",
                       "LANGSMITH_PROJECT", "LANGCHAIN_PROJECT")


@pytest.fixture
def langsmith() -> Iterator[Replay]:
    with replay_server() as replay:
        yield replay


def serve_env(tmp_path: Path, langsmith: Replay, **extra: str) -> dict[str, str]:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"echo": "first"}]))
    # The child starts from this process's environment: no stray LangSmith variable in it.
    for name in LANGSMITH_VARIABLES:
        assert name not in os.environ, f"{name} is set in the test environment"
    return {"PARLEY_LLM": "fake", "PARLEY_FAKE_SCRIPT": str(script),
            "LANGSMITH_ENDPOINT": langsmith.url, "LANGSMITH_API_KEY": "lsv2_test_key",
            "LANGSMITH_PROJECT": "parley-test", **extra}


def chat(url: str) -> dict:
    reply = httpx.post(f"{url}/chat", json={"message": "trace me"}, headers=sign_up(url, "ada"),
                       timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_tracing_on_sends_the_turn_to_langsmith(tmp_path: Path, langsmith: Replay) -> None:
    env = serve_env(tmp_path, langsmith, LANGSMITH_TRACING="true")
    with parley_serve(tmp_path, env) as served:
        assert "LangSmith tracing on: project 'parley-test'" in served.log.read_text()
        chat(served.url)
        deadline = time.monotonic() + 20
        while not langsmith.posted and time.monotonic() < deadline:
            time.sleep(0.2)
    # Shutdown waited for the tracer: every run of the turn has been posted.
    sent = b"".join(body for _, body in langsmith.posted)
    assert any(path.startswith("/runs") for path, _ in langsmith.posted), langsmith.posted
    assert b"trace me" in sent
    assert b"parley-test" in sent
    assert b"ScriptedChatModel" in sent or b"parley-scripted" in sent


def test_tracing_off_sends_nothing(tmp_path: Path, langsmith: Replay) -> None:
    with parley_serve(tmp_path, serve_env(tmp_path, langsmith)) as served:
        assert "LangSmith tracing off" in served.log.read_text()
        answer = chat(served.url)
        assert answer["message"]["content"] == "Your first message was: trace me"
    # The server has stopped, so any tracer it had would have flushed by now.
    assert langsmith.requests == [] and langsmith.posted == []
