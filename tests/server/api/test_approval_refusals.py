"""Decisions the run cannot take are refused with 422 and what to fix, whichever API they
come through, and the calls keep waiting (a real Parley on 127.0.0.1, redis-server)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.api.test_approval import decide, paused
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
