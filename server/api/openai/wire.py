"""OpenAI's Chat Completions wire format: the request this API takes and the objects it
sends back, field for field as OpenAI's own, so that OpenAI's clients work unchanged."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from server.api.text import unicode_text

_TEXT_PART = '{"type": "text", "text": "..."}'
_OWN_TOOLS = ("the agent runs its own tools on the server (GET /agents lists them), so "
              "this endpoint takes no client-side tools")


def _text_of(content: Any) -> Any:
    """A message's content as one string: OpenAI's text parts joined, other parts refused."""
    if not isinstance(content, list):
        return content  # a string or null; anything else fails the `str` check after
    texts: list[str] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else type(part).__name__
        if kind != "text":
            raise ValueError(f"part {index} is of type {kind!r}, and only text is supported: "
                             f"send a string or a list of {_TEXT_PART} parts")
        if not isinstance(part.get("text"), str):
            raise ValueError(f"part {index} has no text: send it as {_TEXT_PART}")
        texts.append(part["text"])
    return "".join(texts)


Content = Annotated[str | None, BeforeValidator(_text_of), WithJsonSchema({"anyOf": [
    {"type": "string"},
    {"type": "array", "items": {"type": "object", "required": ["type", "text"], "properties": {
        "type": {"const": "text"}, "text": {"type": "string"}}}},
    {"type": "null"}]})]


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Content = None
    name: str | None = None
    tool_calls: list[Any] | None = None
    function_call: Any = None

    @model_validator(mode="after")
    def _text_only(self) -> Message:
        if self.role == "tool" or self.tool_calls or self.function_call:
            raise ValueError(f"tool calls and tool results cannot be sent: {_OWN_TOOLS}")
        if self.content is None and self.role != "assistant":
            raise ValueError(f"a {self.role} message needs its content (a string)")
        if self.content is not None:
            unicode_text(self.content)
        return self


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI's request body. Fields this API cannot honour but that do no harm are
    accepted and ignored (sampling, limits, `user`), as are unknown ones."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(description="The agent that answers (GET /v1/models).")
    messages: list[Message] = Field(
        description="The conversation so far, oldest first, the user's new message last.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, description="Only 1.")
    tools: list[Any] | None = Field(default=None, description="Refused: " + _OWN_TOOLS)
    functions: list[Any] | None = Field(default=None, description="Refused, as `tools`.")
    tool_choice: Any = Field(default=None, description='Only "none" or "auto".')
    function_call: Any = Field(default=None, description='Only "none" or "auto".')
    response_format: dict[str, Any] | None = Field(
        default=None, description='Only {"type": "text"}: answers are plain text.')
    # Accepted and ignored: the agent's model keeps its own settings, and the user is the
    # access token's, never `user`.
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    stop: Any = None
    seed: int | None = None
    user: str | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    parallel_tool_calls: bool | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    service_tier: str | None = None
    reasoning_effort: str | None = None

    @field_validator("messages")
    @classmethod
    def _ends_with_the_user(cls, messages: list[Message]) -> list[Message]:
        # As the LangServe routes: the agent's own instructions lead, so system and
        # developer messages do not count.
        spoken = [m for m in messages if m.role not in ("system", "developer")]
        if not spoken or spoken[-1].role != "user":
            raise ValueError("the last message (system and developer ones aside) must be the "
                             "user's: send the conversation so far with the new user message "
                             "last")
        return messages

    @field_validator("n")
    @classmethod
    def _one_choice(cls, n: int | None) -> int | None:
        if n not in (None, 1):
            raise ValueError("only n=1 is supported: the agent gives one answer per request")
        return n

    @field_validator("tools", "functions")
    @classmethod
    def _no_client_tools(cls, tools: list[Any] | None) -> list[Any] | None:
        if tools:
            raise ValueError(f"remove it: {_OWN_TOOLS}")
        return tools

    @field_validator("tool_choice", "function_call")
    @classmethod
    def _no_tool_choice(cls, choice: Any) -> Any:
        if choice not in (None, "none", "auto"):
            raise ValueError(f'only "none" or "auto": {_OWN_TOOLS}')
        return choice

    @field_validator("response_format")
    @classmethod
    def _text_answers(cls, response_format: dict[str, Any] | None) -> dict[str, Any] | None:
        if response_format is not None and response_format.get("type") != "text":
            raise ValueError('only {"type": "text"} is supported: the agent answers in '
                             "plain text")
        return response_format


def to_langchain(messages: list[Message]) -> list[AnyMessage]:
    """The conversation as the agent's graph takes it. System and developer messages are
    left out, as on the LangServe routes: the agent's own instructions (and the user's
    custom instructions, from their profile) lead."""
    converted: list[AnyMessage] = []
    for message in messages:
        if message.role == "user":
            converted.append(HumanMessage(content=message.content or ""))
        elif message.role == "assistant":
            converted.append(AIMessage(content=message.content or ""))
    return converted


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: str | None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "parley"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


@dataclass(frozen=True)
class Completion:
    """One completion's identity, shared by the whole object or by each of its chunks."""

    model: str
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))

    def whole(self, answer: str, usage: Usage) -> ChatCompletion:
        return ChatCompletion(id=self.id, created=self.created, model=self.model,
                              choices=[Choice(message=AssistantMessage(content=answer))],
                              usage=usage)

    def chunk(self, delta: dict[str, str], *, finish_reason: str | None = None,
              with_usage: bool = False) -> str:
        """A `chat.completion.chunk` as JSON. With `stream_options.include_usage`, OpenAI
        sends `usage: null` on every chunk but the last."""
        body: dict[str, Any] = self._chunk([{"index": 0, "delta": delta, "logprobs": None,
                                             "finish_reason": finish_reason}])
        if with_usage:
            body["usage"] = None
        return json.dumps(body)

    def usage_chunk(self, usage: Usage) -> str:
        return json.dumps({**self._chunk([]), "usage": usage.model_dump()})

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "system_fingerprint": None, "choices": choices}
