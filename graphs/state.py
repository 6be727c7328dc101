"""The graph's state: the conversation plus what recall brought in for this turn."""

from __future__ import annotations

from typing import Annotated

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict


class InputState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


class AgentState(InputState, total=False):
    summary: str  # running summary of the thread's older messages
    context: str  # recalled memories and the user's profile, rendered for the prompt
    steps: int  # model calls in this turn, for the step limit
