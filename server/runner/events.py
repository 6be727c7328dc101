"""The typed events of one chat turn, in the order a turn yields them:

    (StepStarted | Token | ToolStarted | ToolFinished | StreamPart)*, then
    Answer, Usage, Done          when the turn is stored and complete, or
    Interrupted, Usage, Done     when it paused at an interrupt (stored so far; a run with
                                 a `Command(resume=...)` goes on from there), or
    Failed, Usage, Done          when it failed (and nothing of it was stored).

`StreamPart`s come only to a caller that asks for LangGraph's own stream modes
(`RunOptions.passthrough`, the Agent Protocol); the chat APIs never see one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

FailureKind = Literal["model", "store", "overload", "internal"]


@dataclass(frozen=True, slots=True)
class StepStarted:
    """More of the answer begins: the first words of an agent step, or the note of a turn
    stopped at its step limit. APIs that stream one text use it to set steps apart."""


@dataclass(frozen=True, slots=True)
class Token:
    """A piece of the answer's text: a model token, or a whole step when the turn was run
    without per-token events."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolStarted:
    tool: str
    call_id: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolFinished:
    tool: str
    call_id: str
    status: Literal["ok", "error"]
    output: str
    duration_ms: float


@dataclass(frozen=True, slots=True)
class Answer:
    """The turn's final message: the agent's answer, or the step-limit note."""

    id: str | None
    content: str
    stopped_at_step_limit: bool = False


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens every model call of the turn reported (zeros from a model that reports
    none)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Failed:
    """The turn failed; `message` is safe to show (no internal addresses)."""

    kind: FailureKind
    message: str
    retry_after: int | None = None


@dataclass(frozen=True, slots=True)
class StreamPart:
    """A part of LangGraph's own run stream, as LangGraph gives it: `mode` is one of its
    stream modes (values, updates, messages, custom, debug, tasks, checkpoints) or
    "events" (one of LangChain's v2 run events)."""

    mode: str
    data: Any


@dataclass(frozen=True, slots=True)
class Interrupted:
    """The run paused: at `interrupt()` calls, whose `Interrupt`s (value, id) say what the
    graph asks, or at a breakpoint (`interrupts` empty). The thread keeps its state."""

    interrupts: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Done:
    """Always last."""

    turn_id: str
    thread_id: str


ChatEvent = (StepStarted | Token | ToolStarted | ToolFinished | StreamPart | Answer | Interrupted
             | Usage | Failed | Done)


def went_on(event: ChatEvent) -> bool:
    """The run got as far as an answer or a new pause: what it was given (a message, a
    decision) was taken, and the thread moved on."""
    return isinstance(event, Answer | Interrupted)
