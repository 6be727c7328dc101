"""One run of an agent on a conversation its client keeps, as the LangServe routes run it
(the stateless graph, nothing stored for the thread), giving the answer as it comes and
the token usage the model reports."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, cast

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AnyMessage
from langchain_core.outputs import LLMResult
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StreamMode

from server import logs
from server.openai_api.wire import Usage
from server.streams import in_own_task
from server.turns import answer_token, final_message, record_tool_end, record_turn_end


@dataclass(frozen=True)
class Delta:
    """More of the answer's text, as the agent writes it."""

    text: str


@dataclass(frozen=True)
class Answer:
    """The agent's final message: the turn has its answer (memory work may follow)."""

    text: str


class UsageCounter(BaseCallbackHandler):
    """Adds up the tokens every model call of the run reports (`usage_metadata`); a model
    that reports none adds nothing."""

    run_inline = True  # a few additions: not worth a thread hop per event
    ignore_chain = True
    ignore_agent = True
    ignore_retriever = True
    ignore_custom_event = True

    def __init__(self) -> None:
        self.prompt = 0
        self.completion = 0

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        for generations in response.generations:
            for generation in generations:
                usage = getattr(getattr(generation, "message", None), "usage_metadata",
                                None) or {}
                self.prompt += int(usage.get("input_tokens") or 0)
                self.completion += int(usage.get("output_tokens") or 0)

    def usage(self) -> Usage:
        return Usage(prompt_tokens=self.prompt, completion_tokens=self.completion,
                     total_tokens=self.prompt + self.completion)


async def run_agent(graph: CompiledStateGraph, messages: list[AnyMessage], *, agent: str,
                    user_id: str, profile: dict[str, Any] | None, usage: UsageCounter,
                    metrics: Any = None, tokens: bool = True
                    ) -> AsyncGenerator[Delta | Answer, None]:
    """The answer's tokens (`tokens`) and then the final answer. Tokens come from every
    step of the agent that says something, steps apart by a blank line, and end with the
    final answer, so they add up to the final answer alone only when the agent said
    nothing before its tool calls. A failed run raises, after logging it; cancelling the
    iteration cancels the run."""
    turn_id = uuid.uuid4().hex
    thread_id = f"openai:{turn_id}"
    logs.thread_id.set(thread_id)
    callbacks: list[Any] = [usage] + ([metrics.model_callback] if metrics is not None else [])
    config = {
        "configurable": {"user_id": user_id, "thread_id": thread_id, "agent": agent,
                         "profile": profile, "ephemeral": True},  # the client keeps it
        "metadata": {"user_id": user_id, "turn_id": turn_id},
        "run_name": f"parley:{agent}",
        "callbacks": callbacks,
    }
    modes: list[StreamMode] = ["messages", "updates", "custom"] if tokens else [
        "updates", "custom"]
    spoke = in_step = answered = False
    started = time.perf_counter()
    try:
        run = in_own_task(graph.astream({"messages": messages}, cast(RunnableConfig, config),
                                        stream_mode=modes))
        async with aclosing(run):  # a client that goes away cancels the run
            async for part in run:
                mode, chunk = cast(tuple[str, Any], part)
                if mode == "messages":
                    if (text := answer_token(chunk)) is not None:
                        yield Delta(("\n\n" if spoke and not in_step else "") + text)
                        spoke = in_step = True
                elif mode == "custom" and isinstance(chunk, dict):
                    if chunk.get("event") == "tool_end":
                        record_tool_end(chunk, agent=agent, turn_id=turn_id, metrics=metrics)
                elif mode == "updates" and isinstance(chunk, dict):
                    in_step = False  # a node ended: the agent's next words are a new step
                    final = None if answered else final_message(chunk)
                    if final is None:
                        continue
                    answered = True
                    node, text = final[0], final[1].text
                    if tokens and node != "agent" and text:  # not a model's: no tokens
                        yield Delta(("\n\n" if spoke else "") + text)
                    yield Answer(text)
    except Exception:
        record_turn_end(agent=agent, turn_id=turn_id, started=started, metrics=metrics,
                        failed=True)
        raise
    record_turn_end(agent=agent, turn_id=turn_id, started=started, metrics=metrics)
