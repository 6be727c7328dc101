"""A scripted chat model for tests and demos: it plays back answers, streams their text
word by word, and emits tool calls, with no network and no randomness."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from uuid import uuid4

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, Field, PrivateAttr

Responder = Callable[[list[BaseMessage]], AIMessage]
Step = AIMessage | Responder


class ScriptedChatModel(BaseChatModel):
    """Answers with the next step of `script`: an `AIMessage` (text and/or tool calls) or
    a function of the conversation returning one. When the script runs out it repeats its
    last step if `cycle` is set, else raises, so a test sees an unexpected extra call.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    script: list[Any] = Field(default_factory=list)
    cycle: bool = False
    _position: int = PrivateAttr(default=0)
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    # Every call's messages go to `calls`, for a test to read. A model that serves (the
    # `fake` provider, the benchmarks) keeps none: the list would grow by every turn.
    record: bool = True
    bound_tools: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "parley-scripted"

    def bind_tools(
        self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        self.bound_tools = [getattr(t, "name", None) or str(t) for t in tools]
        return self

    def _next(self, messages: list[BaseMessage]) -> AIMessage:
        if self.record:
            self.calls.append(list(messages))
        if not self.script:
            raise RuntimeError("ScriptedChatModel has an empty script")
        if self._position >= len(self.script):
            if not self.cycle:
                raise RuntimeError(
                    f"ScriptedChatModel ran out of script after {len(self.script)} steps"
                )
            step = self.script[-1]
        else:
            step = self.script[self._position]
            self._position += 1
        message = step(messages) if callable(step) else step
        tool_calls = [{**call, "id": call.get("id") or f"call_{uuid4().hex[:12]}"}
                      for call in message.tool_calls]
        # Usage in words, so token metrics and callbacks see what a real provider reports.
        given = sum(len(str(m.content).split()) for m in messages)
        wrote = len(str(message.content).split())
        return AIMessage(content=message.content, tool_calls=tool_calls,
                         id=f"run-{uuid4().hex}",
                         usage_metadata={"input_tokens": given, "output_tokens": wrote,
                                         "total_tokens": given + wrote})

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._next(messages))])

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None,
                         **kwargs: Any) -> ChatResult:
        # Without this, LangChain runs `_generate` in a thread pool for every async call.
        return ChatResult(generations=[ChatGeneration(message=self._next(messages))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for chunk in _chunks(self._next(messages)):
            if run_manager and chunk.message.content:
                run_manager.on_llm_new_token(str(chunk.message.content), chunk=chunk)
            yield chunk

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in _chunks(self._next(messages)):
            if run_manager and chunk.message.content:
                await run_manager.on_llm_new_token(str(chunk.message.content), chunk=chunk)
            yield chunk
            # A provider's stream waits on the network between chunks, which lets the
            # server send each token on at once. Without a pause of its own this model
            # would hand over all of its tokens in one go, and a stream's first token
            # would arrive with its last. Zero seconds: a turn of the event loop, no delay.
            await asyncio.sleep(0)


def _chunks(message: AIMessage) -> Iterator[ChatGenerationChunk]:
    words = [w for w in re.split(r"(\s+)", str(message.content)) if w]
    for word in words:
        yield ChatGenerationChunk(message=AIMessageChunk(content=word, id=message.id))
    tool_chunks = [
        {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
        for i, c in enumerate(message.tool_calls)
    ]
    yield ChatGenerationChunk(message=AIMessageChunk(
        content="", id=message.id, tool_call_chunks=tool_chunks,  # type: ignore[arg-type]
        usage_metadata=message.usage_metadata, chunk_position="last",
    ))


def say(text: str) -> AIMessage:
    """A step that answers `text`."""
    return AIMessage(content=text)


def call(name: str, text: str = "", /, **args: Any) -> AIMessage:
    """A step that asks for one tool call."""
    return AIMessage(content=text, tool_calls=[{"name": name, "args": args, "id": ""}])


def load_script(path: Path) -> list[Any]:
    """Read a script from JSON: a list of `{"content": str, "tool_calls": [{"name", "args"}]}`
    steps, or a string per step. `{"echo": true}` answers with the last user message,
    `{"echo": "first"}` with the thread's first one, and
    `{"route": {...}}` maps a keyword in the last user message to a step."""
    raw = json.loads(path.read_text())
    return [_step_from_json(item) for item in raw]


def _step_from_json(item: Any) -> Step:
    if isinstance(item, str):
        return say(item)
    if item.get("echo") == "first":
        return echo_first
    if item.get("echo"):
        return echo
    if "route" in item:
        routes = {k.lower(): _step_from_json(v) for k, v in item["route"].items()}
        return _router(routes)
    calls = [{"name": c["name"], "args": c.get("args", {}), "id": ""}
             for c in item.get("tool_calls", [])]
    return AIMessage(content=item.get("content", ""), tool_calls=calls)


def _last_text(messages: list[BaseMessage], kind: str) -> str:
    for message in reversed(messages):
        if message.type == kind:
            return str(message.content)
    return ""


def echo(messages: list[BaseMessage]) -> AIMessage:
    return say(f"You said: {_last_text(messages, 'human')}")


def echo_first(messages: list[BaseMessage]) -> AIMessage:
    """Quote the thread's first user message: shows what history the model was given."""
    first = next((m for m in messages if m.type == "human"), None)
    return say(f"Your first message was: {first.content if first else ''}")


def _router(routes: dict[str, Step]) -> Responder:
    def respond(messages: list[BaseMessage]) -> AIMessage:
        # After a tool ran, report its result; otherwise route on the user's words.
        if messages and messages[-1].type == "tool":
            return say(f"Here is what I found: {messages[-1].content}")
        text = _last_text(messages, "human").lower()
        for keyword, step in routes.items():
            if keyword != "*" and keyword in text:
                return step(messages) if callable(step) else step
        fallback = routes.get("*", echo)
        return fallback(messages) if callable(fallback) else fallback

    return respond
