"""Applying a person's decisions to a paused step (graphs/approval.py), without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from graphs.approval import apply_decisions, approval_request
from graphs.context import TurnContext


@tool
def send(to: str) -> str:
    """Send."""
    return to


def paused_step() -> tuple[list[AIMessage | HumanMessage], dict[str, object]]:
    ai = AIMessage(content="", id="ai1", tool_calls=[
        {"name": "send", "args": {"to": "bob"}, "id": "c1", "type": "tool_call"}])
    request = approval_request(ai.tool_calls, {"send": send}, TurnContext(user_id="u"),
                               seconds=60)
    return [HumanMessage("send it"), ai], request


def test_a_late_decision_is_a_rejection_that_says_it_expired() -> None:
    messages, request = paused_step()
    request["expires_at"] = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    update = apply_decisions(messages, request, {"decisions": [{"type": "approve"}]},
                             {"send": send}, user_id="u")
    [result] = update["messages"]
    assert isinstance(result, ToolMessage) and "expired" in result.text
    assert update["decisions"]["c1"]["expired"] is True


def test_an_edit_the_schema_refuses_does_not_run() -> None:
    messages, request = paused_step()
    edit = {"type": "edit", "edited_action": {"name": "send", "args": {"to": None}}}
    update = apply_decisions(messages, request, {"decisions": [edit]}, {"send": send},
                             user_id="u")
    [result] = update["messages"]
    assert isinstance(result, ToolMessage) and result.status == "error"
    assert "to:" in update["decisions"]["c1"]["invalid"]  # names the field to fix
