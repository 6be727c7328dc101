"""The one turn runner: drives a LangGraph run and yields typed chat events, which every
API only formats (server/api/)."""

from server.runner.events import (
    Answer,
    ChatEvent,
    Done,
    Failed,
    StepStarted,
    Token,
    ToolFinished,
    ToolStarted,
    Usage,
)
from server.runner.runner import Runner

__all__ = ["Answer", "ChatEvent", "Done", "Failed", "Runner", "StepStarted", "Token",
           "ToolFinished", "ToolStarted", "Usage"]
