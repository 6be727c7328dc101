"""Each agent as a LangServe runnable at `/agents/{name}`: invoke, batch, stream,
stream_events, schemas and the chat playground, formatted from the runner's events.

LangServe's clients (and its playground) send the whole conversation each time, so these
routes run the agent's stateless graph on the given messages; `/chat` is the
server-side-thread API. Tool calls show in the answer as short note lines, which are
stripped again when the conversation comes back.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from langchain_core.callbacks import AsyncCallbackManagerForChainRun
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.runnables import (
    Runnable,
    RunnableConfig,
    RunnableGenerator,
    ensure_config,
)
from langgraph.types import Send
from langserve import add_routes
from langserve.serialization import WellKnownLCSerializer
from langserve.serialization import default as langserve_default
from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from graphs.builder import TurnGraph
from graphs.context import TurnContext
from server.api.deps import (
    admit_turn,
    current_user,
    enforce_rate_limit,
    get_current_user,
    get_platform,
    get_profile,
    get_runner,
)
from server.api.text import unicode_text
from server.approval import waiting_text
from server.runner import Failed, Interrupted, Runner, Token, ToolFinished, ToolStarted
from server.runner.failures import http_status

TOOL_NOTE = "🛠"
_NOTE_LINE = re.compile(rf"^{TOOL_NOTE} .*\n?", re.MULTILINE)
_CALL = "__parley_call"  # the request's turn, handed to the runnable in its config
_CALL_FIELDS = ("tool_calls", "invalid_tool_calls", "tool_call_chunks")


class ChatInput(BaseModel):
    """The conversation so far, oldest first; the last message is the user's new one."""

    messages: list[HumanMessage | AIMessage | SystemMessage] = Field(
        ..., json_schema_extra={"widget": {"type": "chat", "input": "messages"}},
    )

    @field_validator("messages", mode="before")
    @classmethod
    def _text_only(cls, messages: Any) -> Any:
        """Messages as text: the agent runs its own tools, so tool calls a client sends
        back are dropped (their text stays), and text must be Unicode."""
        if not isinstance(messages, list):
            return messages
        kept = []
        for message in messages:
            if isinstance(message, dict):
                message = {k: v for k, v in message.items() if k not in _CALL_FIELDS}
                if isinstance(message.get("content"), str):
                    unicode_text(message["content"])
            kept.append(message)
        return kept

    @model_validator(mode="after")
    def _ends_with_the_user(self) -> ChatInput:
        # Checked here, so LangServe answers 422 before any run starts (a failed run is a
        # 500); the agent's own instructions lead, so system messages do not count.
        spoken = [m for m in self.messages if not isinstance(m, SystemMessage)]
        if not spoken or spoken[-1].type != "human":
            raise ValueError("the last message must be the user's (type 'human'): send the "
                             "conversation so far with the new user message last")
        return self


# The streamed answer aggregates to an AIMessageChunk. The chat playground recognises an
# AI-message output only by an inline `anyOf` option whose `type` enum holds "ai", which
# pydantic's `$ref` schema of AIMessage does not give, so the schema is spelled out.
_AI_MESSAGE_SCHEMA = {"type": "object", "title": "AIMessage", "properties": {
    "type": {"enum": ["ai", "AIMessageChunk"]}, "content": {"type": "string"}},
    "required": ["content"]}
ChatOutput = Annotated[AIMessage | AIMessageChunk,
                       WithJsonSchema({"anyOf": [_AI_MESSAGE_SCHEMA]})]


@dataclass(frozen=True)
class _Call:
    """What the request resolved for the runnable: the caller, the runner and the graph."""

    user_id: str
    profile: dict[str, Any] | None
    runner: Runner
    graph: TurnGraph


class TurnFailed(HTTPException):
    """A failed turn, for LangServe to answer with (invoke, batch) or end its stream on."""

    def __init__(self, failure: Failed) -> None:
        headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else None
        super().__init__(http_status(failure), failure.message, headers=headers)


def _clean(messages: list[AnyMessage]) -> list[AnyMessage]:
    cleaned: list[AnyMessage] = []
    for message in messages:
        if isinstance(message, AIMessage | AIMessageChunk):
            text = _NOTE_LINE.sub("", message.text).strip()
            cleaned.append(AIMessage(content=text))
        elif isinstance(message, SystemMessage):
            continue  # the agent's own instructions lead; clients do not replace them
        else:
            cleaned.append(message)
    return cleaned


async def _text(payload: Any, config: RunnableConfig, agent: str, *, tokens: bool
                ) -> AsyncIterator[str]:
    """The answer as LangServe shows it: its text, tool calls as note lines, steps a blank
    line apart. Streamed and whole, the same text in the end."""
    messages = _messages_of(payload)
    call: _Call = (config.get("configurable") or {})[_CALL]
    turn_id = uuid.uuid4().hex
    ctx = TurnContext(user_id=call.user_id, thread_id=f"langserve:{turn_id}", agent=agent,
                      turn_id=turn_id, persist=False, profile=call.profile)
    spoke = False
    async for event in call.runner.stream(call.graph, ctx, _clean(list(messages)),
                                          tokens=tokens, parent=config):
        if isinstance(event, Token):
            spoke = True
            yield event.text
        elif isinstance(event, ToolStarted):
            yield f"{chr(10) * 2 if spoke else ''}{TOOL_NOTE} {event.tool}\n"
            spoke = False
        elif isinstance(event, ToolFinished):
            yield "\n"
        elif isinstance(event, Interrupted):  # a call waits for approval: none ran
            yield f"{chr(10) * 2 if spoke else ''}{waiting_text(event.interrupts)}"
        elif isinstance(event, Failed):
            raise TurnFailed(event)


def _messages_of(payload: Any) -> list[AnyMessage]:
    """The conversation from what LangServe hands over: its own validated copy of
    ChatInput, or a dict of message objects (stream_events); a direct caller's dict of
    message dicts is validated here. Message objects are not validated again: LangChain's
    AI-message check fails (AttributeError, not a validation error) on other messages."""
    given = payload.get("messages") if isinstance(payload, dict) else getattr(
        payload, "messages", None)
    if isinstance(given, list) and all(isinstance(m, BaseMessage) for m in given):
        return list(given)
    return list(ChatInput.model_validate(payload).messages)


class _AgentRunnable(RunnableGenerator[Any, AIMessageChunk]):
    """A generator for stream, stream_log and stream_events; `invoke` and `batch` run the
    graph without per-token events, since nobody reads them there: a generator's invoke
    would stream every token only to add the chunks up, about twice the turn's CPU."""

    def __init__(self, agent: str) -> None:
        self.agent = agent

        async def stream(inputs: AsyncIterator[Any], config: RunnableConfig
                         ) -> AsyncIterator[AIMessageChunk]:
            payload: Any = None
            async for item in inputs:
                payload = item
            async for piece in _text(payload, config, agent, tokens=True):
                yield AIMessageChunk(content=piece)

        super().__init__(stream, name=f"parley_{agent}")  # type: ignore[arg-type]

    async def _whole(self, payload: Any, run_manager: AsyncCallbackManagerForChainRun,
                     config: RunnableConfig) -> AIMessageChunk:
        # `config` carries this run's child callbacks (tracing sees the graph under it);
        # `run_manager` is in the signature only because LangChain passes by name.
        pieces = [p async for p in _text(payload, config, self.agent, tokens=False)]
        return AIMessageChunk(content="".join(pieces))

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None,
                      **kwargs: Any) -> AIMessageChunk:
        return await self._acall_with_config(self._whole, input, ensure_config(config),
                                             **kwargs)


def agent_runnable(agent: str) -> Runnable[Any, Any]:
    return _AgentRunnable(agent).with_types(
        input_type=ChatInput, output_type=ChatOutput)  # type: ignore[arg-type]


_RUNS = {"invoke", "batch", "stream", "stream_log", "stream_events"}


async def check_body(request: Request) -> None:
    """LangServe's request envelope, checked before LangServe reads it: some malformed
    bodies (`"config": null`, `{"inputs": 5}`, an input of the wrong shape in a batch)
    make LangServe itself fail with a 500 instead of refusing them."""
    endpoint = request.url.path.rstrip("/").rsplit("/", 1)[-1]
    if request.method != "POST" or endpoint not in _RUNS:
        return
    try:
        body = await request.json()
    except json.JSONDecodeError as exc:
        raise _invalid(["body"], "the request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise _invalid(["body"], "send a JSON object: {\"input\": ..., \"config\": {...}}")
    huge = _oversized_integer(body, ["body"])
    if huge is not None:  # LangServe's streams echo the body through orjson, which fails
        raise _invalid(huge, "integers must fit in 64 bits")
    for key in ("config", "kwargs"):
        if key in body and not isinstance(body[key], dict) and not (
                key == "config" and endpoint == "batch" and isinstance(body[key], list)):
            raise _invalid(["body", key], f"{key} must be an object (or be left out)")
    if endpoint == "batch":
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise _invalid(["body", "inputs"], "inputs must be a non-empty list of inputs")
        configs = body.get("config")
        if isinstance(configs, list) and (len(configs) != len(inputs) or not all(
                isinstance(c, dict) for c in configs)):
            raise _invalid(["body", "config"], "a list of configs needs one object per input")
        for index, item in enumerate(inputs):
            _check_input(item, ["body", "inputs", index])
    else:
        if "input" not in body:
            raise _invalid(["body", "input"], "input is required: {\"messages\": [...]}")
        _check_input(body["input"], ["body", "input"])


def _oversized_integer(value: Any, where: list[Any]) -> list[Any] | None:
    """Where in the body an integer lies outside 64 bits, or None."""
    stack = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, int) and not isinstance(item, bool) and not (
                -(2**63) <= item < 2**64):
            return at
        if isinstance(item, dict):
            stack.extend((v, [*at, k]) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, [*at, i]) for i, v in enumerate(item))
    return None


def _check_input(item: Any, where: list[Any]) -> None:
    try:
        ChatInput.model_validate(item)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": (*where, *e["loc"])}
                                      for e in exc.errors()]) from exc
    except (TypeError, AttributeError) as exc:  # LangChain's own message checks
        raise _invalid(where, f"not a conversation of messages ({exc})") from exc


def _invalid(where: list[Any], message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": tuple(where), "msg": message,
                                    "type": "value_error"}])


def add_agent_routes(app: FastAPI, agent_names: list[str]) -> None:
    def per_request(agent: str) -> Any:
        async def with_call(config: dict[str, Any], request: Request) -> dict[str, Any]:
            # LangServe's dependency hook: the user comes from the verified token, and
            # whatever the client put in `configurable` is dropped.
            principal = get_current_user(request)
            profile = await get_profile(request, principal)
            platform = await get_platform(request)
            runner = await get_runner(request)
            call = _Call(user_id=principal.user_id, profile=profile, runner=runner,
                         graph=platform.agents[agent].stateless_graph)
            return {**config, "configurable": {_CALL: call}}

        return with_call

    for name in agent_names:
        add_routes(
            app,
            agent_runnable(name),
            path=f"/agents/{name}",
            serializer=GraphAwareSerializer(),
            playground_type="chat",
            per_req_config_modifier=per_request(name),
            dependencies=[Depends(current_user), Depends(check_body),
                          Depends(enforce_rate_limit), Depends(admit_turn)],
            enabled_endpoints=["invoke", "batch", "stream", "stream_log", "stream_events",
                               "input_schema", "output_schema", "config_schema", "config_hashes",
                               "playground"],
        )


class GraphAwareSerializer(WellKnownLCSerializer):
    """LangServe's serializer, plus LangGraph's routing values: a step that sends tool
    calls on one by one returns `Send`s, which `stream_log` and `stream_events` pass on
    as that step's output (and LangServe's own serializer refuses, ending the stream)."""

    def dumps(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=_graph_default)


def _graph_default(value: Any) -> Any:
    if isinstance(value, Send):
        # Its argument is the whole state again, which clients would decode as messages.
        return {"sent_to": value.node}
    return langserve_default(value)
