"""What a run may ask beyond a plain chat turn: the Agent Protocol's resume, branch,
breakpoints, durability and LangGraph's own stream modes. The defaults are a chat turn."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langgraph.types import Command, Durability

# LangGraph's stream modes a caller may have passed through as they are; "events" is
# LangChain's v2 run events (every callback of the run, as a stream).
LANGGRAPH_MODES = frozenset({"values", "updates", "messages", "custom", "debug", "tasks",
                             "checkpoints"})
PASSTHROUGH_MODES = LANGGRAPH_MODES | {"events"}

Breakpoints = Sequence[str] | Literal["*"] | None


@dataclass(frozen=True)
class RunOptions:
    command: Command[Any] | None = None  # go on from an interrupt: Command(resume=...)
    checkpoint_id: str | None = None  # run from this kept checkpoint (edit, regenerate)
    passthrough: frozenset[str] = frozenset()  # modes yielded as StreamPart
    durability: Durability | None = None  # None: one checkpoint, when the run ends
    interrupt_before: Breakpoints = None
    interrupt_after: Breakpoints = None

    def __post_init__(self) -> None:
        unknown = self.passthrough - PASSTHROUGH_MODES
        if unknown:
            raise ValueError(f"unknown stream modes: {sorted(unknown)}")


PLAIN = RunOptions()
