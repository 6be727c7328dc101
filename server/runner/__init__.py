"""The one turn runner: drives a LangGraph run and yields typed chat events, which every
API only formats (server/api/)."""

from server.runner.events import (
    Answer,
    ChatEvent,
    Done,
    Failed,
    Interrupted,
    StepStarted,
    StreamPart,
    Token,
    ToolFinished,
    ToolStarted,
    Usage,
    went_on,
)
from server.runner.options import RunOptions
from server.runner.runner import Runner

__all__ = ["Answer", "ChatEvent", "Done", "Failed", "Interrupted", "RunOptions", "Runner",
           "StepStarted", "StreamPart", "Token", "ToolFinished", "ToolStarted", "Usage",
           "went_on"]
