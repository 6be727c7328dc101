"""What the graph needs from outside, passed in by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage
from langchain_core.tools import BaseTool

from graphs.context import TurnContext


@dataclass(frozen=True)
class Recalled:
    context: str = ""  # memories and profile, as text for the system prompt
    summary: str | None = None  # the thread's running summary, when memory keeps one
    restored: Sequence[AnyMessage] = ()  # the thread's earlier messages, when rebuilt


RecallFn = Callable[[TurnContext, Sequence[AnyMessage]], Awaitable[Recalled]]
RememberFn = Callable[[TurnContext, Sequence[AnyMessage]], Awaitable[None]]


async def recall_nothing(_ctx: TurnContext, _messages: Sequence[AnyMessage]) -> Recalled:
    return Recalled()


async def remember_nothing(_ctx: TurnContext, _messages: Sequence[AnyMessage]) -> None:
    return None


AlwaysAllowed = Callable[[str], Awaitable[Collection[str]]]


async def allows_nothing(_user_id: str) -> Collection[str]:
    return ()


@dataclass(frozen=True)
class ApprovalDeps:
    """Which calls wait for a person (docs/approval.md), decided by the composition root:
    the agent's tools that need approval, and the tools a user chose to always allow."""

    gated: frozenset[str]  # tool names whose calls need approval with this agent
    always_allowed: AlwaysAllowed = field(default=allows_nothing)  # user id -> tool names
    seconds: float = 86_400.0  # how long a call waits before it is rejected as expired


@dataclass(frozen=True)
class GraphDeps:
    model: BaseChatModel
    tools: Sequence[BaseTool] = ()
    instructions: str = "You are a helpful assistant."
    max_steps: int = 8
    tool_timeout: float = 30.0
    window_tokens: int | None = None  # fold older messages into the summary past this
    recall: RecallFn = field(default=recall_nothing)
    remember: RememberFn = field(default=remember_nothing)
    approval: ApprovalDeps | None = None  # None: no tool of this agent waits for anyone
