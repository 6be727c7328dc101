"""What a turn carries, typed: who is talking, in which thread, to which agent. The graph
receives it as LangGraph's run context (`Runtime[TurnContext]`), never from the request
body; `run_config` is the one place that writes LangGraph's config for a turn."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig

from memory.redis_checkpointer import NO_CHECKPOINT_YET


@dataclass(frozen=True)
class TurnContext:
    user_id: str = "anonymous"
    thread_id: str = ""  # the conversation's id as its user knows it
    agent: str = ""
    turn_id: str = ""
    persist: bool = True  # False for one-off runs whose client keeps the conversation
    profile: Mapping[str, Any] | None = None  # the user's profile, from the gateway
    new_thread: bool = False  # the server just made this thread's id: nothing stored yet

    @property
    def thread_key(self) -> str:
        return thread_key(self.user_id, self.thread_id)


def thread_key(user_id: str, thread_id: str) -> str:
    """The checkpointer's thread id: threads are stored under their owner, so one user can
    never load another's thread, whatever thread id they send."""
    return f"{user_id}:{thread_id}"


def thread_config(user_id: str, thread_id: str) -> RunnableConfig:
    """The config that names a user's thread in the checkpointer (to read or delete it)."""
    return {"configurable": {"thread_id": thread_key(user_id, thread_id), "checkpoint_ns": ""}}


def run_config(ctx: TurnContext, *, callbacks: Sequence[Any] = (),
               checkpoint_id: str | None = None) -> RunnableConfig:
    """LangGraph's config for running `ctx`'s turn: the checkpointer's thread key (and the
    kept checkpoint to go on from, for a branch), and the caller's id for tools
    (`config["configurable"]["user_id"]`, as LangChain tools read the run's config),
    traced under the turn's own names."""
    configurable: dict[str, Any] = {"thread_id": ctx.thread_key, "user_id": ctx.user_id}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    elif ctx.new_thread:  # nothing stored under it yet: the first read costs nothing
        configurable[NO_CHECKPOINT_YET] = True
    return {
        "configurable": configurable,
        "metadata": {"user_id": ctx.user_id, "parley_thread_id": ctx.thread_id,
                     "turn_id": ctx.turn_id, "agent": ctx.agent},
        "run_name": f"parley:{ctx.agent}",
        "callbacks": list(callbacks),
    }
