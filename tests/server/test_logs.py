"""Structured logs of a real `parley serve` with PARLEY_LOG_FORMAT=json: every line is JSON;
the request, turn and tool lines carry request, user and thread ids, the agent and tool
names and durations; no password or token is ever written."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.support.serve import parley_serve

PASSWORD = "correct horse battery staple"


def test_json_logs_of_a_conversation(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([
        {"tool_calls": [{"name": "usage_report", "args": {"period_days": 7}}]},
        "Here is your report."]))
    env = {"PARLEY_LLM": "fake", "PARLEY_FAKE_SCRIPT": str(script),
           "PARLEY_LOG_FORMAT": "json"}
    with parley_serve(tmp_path, env) as served:
        url = served.url
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.post("/auth/register", json={"username": "ada", "password": PASSWORD}
                               ).status_code == 201
            tokens = client.post("/auth/login", json={"username": "ada",
                                                      "password": PASSWORD}).json()
            headers = {"Authorization": f"Bearer {tokens['access_token']}",
                       "X-Request-ID": "req-under-test"}
            reply = client.post("/chat", json={"message": "my usage please"}, headers=headers)
            assert reply.status_code == 200, reply.text
            assert reply.headers["x-request-id"] == "req-under-test"
            thread = reply.json()["thread_id"]
            me = client.get("/auth/me", headers=headers).json()
        text = served.log.read_text()

    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert lines, text
    # Nothing unstructured slipped through between the JSON lines (uvicorn's own included).
    strays = [line for line in text.splitlines() if line.strip() and not line.startswith("{")]
    assert not strays, strays[:5]
    ours = [entry for entry in lines if entry.get("request_id") == "req-under-test"]
    turn = next(e for e in ours if e["msg"].startswith("turn "))
    assert turn["agent"] == "assistant" and turn["outcome"] == "ok"
    assert turn["user_id"] == str(me["id"]) and turn["thread_id"] == thread
    assert turn["duration_ms"] > 0
    tool = next(e for e in ours if e.get("tool") == "usage_report")
    assert tool["status"] == "ok" and tool["thread_id"] == thread and "duration_ms" in tool
    access = next(e for e in ours if e.get("path") == "/chat")
    assert access["status"] == 200 and access["method"] == "POST"
    assert access["user_id"] == str(me["id"])
    # Secrets never reach the log.
    for secret in (PASSWORD, tokens["access_token"], tokens["refresh_token"]):
        assert secret not in text
