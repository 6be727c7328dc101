"""Inputs that used to answer 500, each on every route it reached: every one is now a 4xx
that says what to fix, and no turn runs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from agents.fake import say
from tests.support.agent_protocol import Server

DEEP = ("[" * 1000 + "]" * 1000).encode()
HUMAN = {"type": "human", "content": "hi"}

LANGSERVE = "/agents/assistant"
CASES: list[tuple[str, str, Any, int]] = [
    # JSON nested 1,000 deep (RecursionError)
    ("deep json to invoke", f"{LANGSERVE}/invoke", b'{"input": ' + DEEP + b"}", 400),
    ("deep json to chat", "/chat", b'{"message": ' + DEEP + b"}", 400),
    # an unpaired surrogate (UnicodeEncodeError deep inside)
    ("surrogate to chat", "/chat", b'{"message": "\\ud800"}', 422),
    ("surrogate to chat stream", "/chat/stream", b'{"message": "a \\udfff b"}', 422),
    ("surrogate to openai", "/v1/chat/completions",
     b'{"model": "assistant", "messages": [{"role": "user", "content": "\\ud800"}]}', 400),
    ("surrogate to invoke", f"{LANGSERVE}/invoke",
     b'{"input": {"messages": [{"type": "human", "content": "\\ud800"}]}}', 422),
    # bytes that are not UTF-8
    ("latin-1 to invoke", f"{LANGSERVE}/invoke", b'{"input": "caf\xe9"}', 400),
    ("latin-1 to chat", "/chat", b'{"message": "caf\xe9"}', 400),
    # LangServe envelopes LangServe itself failed on
    ("null config", f"{LANGSERVE}/invoke", {"input": {"messages": [HUMAN]}, "config": None},
     422),
    ("number inputs", f"{LANGSERVE}/batch", {"inputs": 5}, 422),
    ("null inputs", f"{LANGSERVE}/batch", {"inputs": None}, 422),
    ("bad input in a batch", f"{LANGSERVE}/batch", {"inputs": [{"messages": [HUMAN]},
                                                               {"text": "no"}]}, 422),
    ("odd tool call", f"{LANGSERVE}/stream", {"input": {"messages": [
        {"type": "ai", "content": "x", "tool_calls": [{"zz": 1}]},
        {"type": "human", "content": "q"}]}}, 200),  # tool calls sent back are dropped
    ("a system message last", f"{LANGSERVE}/stream_events", {"input": {"messages": [
        HUMAN, {"type": "system", "content": "y"}]}}, 200),
    ("a list body", f"{LANGSERVE}/invoke", [1, 2], 422),
]


@pytest.mark.parametrize(("name", "path", "body", "status"), CASES, ids=[c[0] for c in CASES])
async def test_bad_input_is_a_clear_4xx(name: str, path: str, body: Any, status: int,
                                        make_app: Any, client_for: Any) -> None:
    app = make_app([say("hello")])
    async with client_for(app) as client:
        if isinstance(body, bytes):
            response = await client.post(path, content=body,
                                         headers={"content-type": "application/json"})
        else:
            response = await client.post(path, json=body)
    assert response.status_code == status, response.text
    if status >= 400:
        detail = response.json().get("detail") or response.json()["error"]["message"]
        assert isinstance(detail, str) and detail
        assert app.state.model.calls == []  # nothing ran


async def test_deep_json_to_the_login_is_a_400(make_auth_app: Any, client_for: Any) -> None:
    async with client_for(make_auth_app([say("hi")])) as client:
        response = await client.post("/auth/login", content=b'{"username": ' + DEEP + b"}",
                                     headers={"content-type": "application/json"})
    assert response.status_code == 400 and "nests too deeply" in response.json()["detail"]


async def test_an_integer_beyond_64_bits_in_a_langserve_body_is_a_422(
        make_app: Any, client_for: Any) -> None:
    async with client_for(make_app([say("hi")])) as client:
        answer = await client.post("/agents/summarizer/stream_log", json={
            "input": {"messages": [{"type": "human", "content": "hi"}]},
            "kwargs": {"n": 2**70}})
    assert answer.status_code == 422 and "64 bits" in answer.text



def test_a_thread_history_limit_out_of_range_is_a_422(ap_server: Server) -> None:
    answer = httpx.get(f"{ap_server.url}/threads/t1/history", params={"limit": 0},
                       headers={"x-api-key": ap_server.keys["ada"]})
    assert answer.status_code == 422 and "limit" in answer.text
