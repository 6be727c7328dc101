"""The graph's state: the conversation plus what recall brought in for this turn."""

from __future__ import annotations

from typing import Annotated, Any

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict


class InputState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


class AgentState(InputState, total=False):
    summary: str  # running summary of the thread's older messages
    context: str  # recalled memories and the user's profile, rendered for the prompt
    steps: int  # model calls in this turn, for the step limit
    approval: dict[str, Any] | None  # the calls waiting for a person (graphs/approval.py)
    decisions: dict[str, dict[str, Any]]  # by call id: what the person decided, for history
