"""Decisions the run cannot take are refused with 422 and what to fix, whichever API they
come through, and the calls keep waiting (a real Parley on 127.0.0.1, redis-server)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.api.test_approval import decide, paused
from tests.server.api.test_approval_races import ap_paused, ap_resume
from tests.server.conftest import Probe
from tests.support.agent_protocol import Server


@pytest.mark.parametrize(("decision", "fix"), [
    ({"decision": "edit"}, "args"),
    ({"decision": "respond"}, "message"),
    ({"decision": "respond", "message": "  "}, "message"),
    ({"decision": "reject", "always_allow": True}, "always_allow"),
])
def test_a_single_decision_missing_its_part_is_refused(ap_server: Server, probe: Probe,
                                                      decision: dict[str, Any],
                                                      fix: str) -> None:
    with ap_server.client() as http:
        said = paused(http)
        refused = decide(http, said["thread_id"], **decision)
        assert refused.status_code == 422, refused.text
        assert fix in refused.json()["detail"]
        assert http.get(f"/chat/threads/{said['thread_id']}/approval").status_code == 200
        assert decide(http, said["thread_id"], decision="approve").status_code == 200
    assert probe.posted == ["Bob: Hello!"]


@pytest.mark.parametrize(("resume", "fix"), [
    ({"decisions": "approve"}, '{"decisions"'),
    ("approve", '{"decisions"'),
    ({"decisions": []}, "no decision for"),
    ({"decisions": [{"type": "aprove"}]}, "must be one of"),
    ({"decisions": [{"type": "respond"}]}, "message"),
    ({"decisions": [{"type": "approve"}, {"type": "approve"}]}, "2 decisions for 1"),
    ({"decisions": [{"type": "approve", "id": "call_x"}]}, "does not wait"),
])
def test_an_agent_protocol_resume_that_leaves_a_call_undecided_is_refused(
        ap_server: Server, probe: Probe, resume: Any, fix: str) -> None:
    with ap_server.client() as http:
        thread, _interrupt = ap_paused(http)
        refused = ap_resume(http, thread, resume)
        assert refused.status_code == 422, refused.text
        assert fix in refused.json()["detail"]
        assert http.get(f"/threads/{thread}").json()["status"] == "interrupted"
        went_on = ap_resume(http, thread, {"decisions": [{"type": "approve"}]})
        assert went_on.status_code == 200, went_on.text
    assert probe.posted == ["Bob: Hello!"]
