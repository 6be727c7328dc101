"""Adds up the tokens every model call of a run reports."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from server.runner.events import Usage


class UsageCounter(BaseCallbackHandler):
    """`usage_metadata` of every model call of the run; a model that reports none adds
    nothing."""

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
        return Usage(prompt_tokens=self.prompt, completion_tokens=self.completion)
