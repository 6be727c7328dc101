"""`/chat/stream` resumes: a client that lost the stream sends the same request again with
`Last-Event-ID` and gets the rest of the same turn, from the same replica or another,
never a second turn."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.server.api.test_chat import sse_events
from tests.support.agent_protocol import Server


def first_events(server: Server, body: dict[str, Any], n: int) -> list[tuple[str, str, Any]]:
    """The first `n` events of a new streamed turn; then the client goes away."""
    seen: list[tuple[str, str, Any]] = []
    with server.client() as http, http.stream("POST", "/chat/stream", json=body) as response:
        assert response.status_code == 200
        buffer = ""
        for text in response.iter_text():
            buffer += text.replace("\r\n", "\n")
            while "\n\n" in buffer and len(seen) < n:
                block, buffer = buffer.split("\n\n", 1)
                seen += sse_events(block + "\n\n")
            if len(seen) >= n:
                return seen
    raise AssertionError(f"the stream ended after {len(seen)} events")


def resume(url: str, server: Server, body: dict[str, Any], last_id: str,
           user: str = "ada") -> httpx.Response:
    with httpx.Client(base_url=url, timeout=30,
                      headers={"x-api-key": server.keys[user]}) as http:
        return http.post("/chat/stream", json=body, headers={"Last-Event-ID": last_id})


@pytest.mark.timeout(400)  # another replica is a second server process, which starts first
@pytest.mark.parametrize("where", ["same replica", "another replica"])
def test_a_lost_stream_resumes_the_same_turn(where: str, ap_server: Server,
                                             request: pytest.FixtureRequest) -> None:
    url = ap_server.url if where == "same replica" else request.getfixturevalue(
        "other_replica")
    body = {"message": "wait 1"}
    seen = first_events(ap_server, body, 1)  # the tool has started; the answer is to come
    assert [e[0] for e in seen] == ["tool_start"]
    response = resume(url, ap_server, body, seen[-1][1])
    assert response.status_code == 200
    rest = sse_events(response.text)
    names = [e[0] for e in seen + rest]
    assert names[0] == "tool_start" and names[-2:] == ["message", "done"]
    assert names.count("tool_start") == 1  # one turn, not two
    turn = seen[0][1].split(":")[0]
    assert [e[1] for e in seen + rest] == [f"{turn}:{i}" for i in range(len(names))]
    assert rest[-2][2]["content"] == "Waited."
    assert len(ap_server.app.state.model.calls) == 2  # the tool call, then the answer


def test_only_the_turn_s_owner_resumes_it(ap_server: Server) -> None:
    body = {"message": "hello"}
    seen = first_events(ap_server, body, 1)
    assert resume(ap_server.url, ap_server, body, seen[0][1], user="bob").status_code == 404
    bad = resume(ap_server.url, ap_server, body, "not-an-event-id")
    assert bad.status_code == 422 and "Last-Event-ID" in bad.json()["detail"]
    done = sse_events(resume(ap_server.url, ap_server, body, seen[0][1]).text)
    assert done[-1][0] == "done"  # the turn had ended: its rest, again
    assert done[-1][2]["turn_id"] == seen[0][1].split(":")[0]


def test_a_stream_lost_before_its_first_event_resumes_from_the_turn_id(
        ap_server: Server) -> None:
    body = {"message": "wait 1"}
    with ap_server.client() as http, http.stream("POST", "/chat/stream", json=body) as lost:
        assert lost.status_code == 200
        turn = lost.headers["X-Turn-Id"]  # the client goes away before reading an event
    response = resume(ap_server.url, ap_server, body, turn)
    assert response.status_code == 200 and response.headers["X-Turn-Id"] == turn
    events = sse_events(response.text)
    names = [e[0] for e in events]
    assert names[0] == "tool_start" and names[-2:] == ["message", "done"]
    assert [e[1] for e in events] == [f"{turn}:{i}" for i in range(len(events))]
    assert len(ap_server.app.state.model.calls) == 2  # one turn: the tool call, the answer
    for malformed in (f"{turn}:x", f"{turn}:-2", "not-a-turn"):
        bad = resume(ap_server.url, ap_server, body, malformed)
        assert bad.status_code == 422 and "X-Turn-Id" in bad.json()["detail"]
