"""Each agent as a LangServe runnable at `/agents/{name}`: invoke, batch, stream,
stream_events, schemas and the chat playground.

LangServe's clients (and its playground) send the whole conversation each time, so these
routes run the graph on the given messages without a stored thread; `/chat` is the
server-side-thread API. Tool calls show in the streamed answer as short notes, which are
stripped again when the conversation comes back.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Annotated, Any, cast

from fastapi import Depends, FastAPI, Request
from langchain_core.callbacks import AsyncCallbackManagerForChainRun
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    AnyMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.runnables import (
    Runnable,
    RunnableConfig,
    RunnableGenerator,
    ensure_config,
)
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StreamMode
from langserve import add_routes
from pydantic import BaseModel, Field, WithJsonSchema, model_validator

from server.deps import current_user, get_current_user, get_profile
from server.ratelimit import enforce_rate_limit
from server.streams import in_own_task
from server.turns import answer_token

TOOL_NOTE = "🛠"
_NOTE_LINE = re.compile(rf"^{TOOL_NOTE} .*\n?", re.MULTILINE)


class ChatInput(BaseModel):
    """The conversation so far, oldest first; the last message is the user's new one."""

    messages: list[HumanMessage | AIMessage | SystemMessage] = Field(
        ..., json_schema_extra={"widget": {"type": "chat", "input": "messages"}},
    )

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


def _prepare(payload: Any, config: RunnableConfig, agent: str
             ) -> tuple[list[AnyMessage], RunnableConfig]:
    # LangServe hands over a validated ChatInput; a direct caller may pass a dict.
    chat = payload if isinstance(payload, ChatInput) else ChatInput.model_validate(payload)
    messages = _clean(list(chat.messages))
    configurable = dict(config.get("configurable") or {})
    configurable.setdefault("user_id", "local")
    configurable["thread_id"] = f"langserve:{uuid.uuid4().hex}"
    configurable["agent"] = agent
    configurable["ephemeral"] = True  # the client keeps this conversation, not us
    return messages, {**config, "configurable": configurable}


async def _pieces(graph: CompiledStateGraph, messages: list[AnyMessage],
                  config: RunnableConfig, *, tokens: bool) -> AsyncIterator[str]:
    """The answer's text as it comes: tokens (`tokens`) or each step's whole text, with a
    note line per tool call. Both ways give the same text in the end."""
    modes: list[StreamMode] = ["messages" if tokens else "updates", "custom"]
    previous_step_spoke = False
    run = in_own_task(graph.astream({"messages": messages}, config, stream_mode=modes))
    async with aclosing(run):  # a client that goes away cancels the run
        async for part in run:
            mode, chunk = cast(tuple[str, Any], part)
            if mode == "messages":
                if (text := answer_token(chunk)) is not None:
                    previous_step_spoke = True
                    yield text
            elif mode == "updates":
                for message in ((chunk or {}).get("agent") or {}).get("messages", []):
                    if isinstance(message, AIMessage) and message.text:
                        previous_step_spoke = True
                        yield message.text
            elif isinstance(chunk, dict) and chunk.get("event") == "tool_start":
                lead = "\n\n" if previous_step_spoke else ""
                previous_step_spoke = False
                yield f"{lead}{TOOL_NOTE} {chunk['tool']}\n"
            elif isinstance(chunk, dict) and chunk.get("event") == "tool_end":
                yield "\n"


class _AgentRunnable(RunnableGenerator[Any, AIMessageChunk]):
    """A generator for stream, stream_log and stream_events; `invoke` and `batch` run the
    graph without per-token events, since nobody reads them there: a generator's invoke
    would stream every token only to add the chunks up, about twice the turn's CPU."""

    def __init__(self, graph_of: Callable[[], CompiledStateGraph], agent: str) -> None:
        self.graph_of = graph_of
        self.agent = agent

        async def stream(inputs: AsyncIterator[Any], config: RunnableConfig
                         ) -> AsyncIterator[AIMessageChunk]:
            payload: Any = None
            async for item in inputs:
                payload = item
            messages, run_config = _prepare(payload, config, agent)
            async for piece in _pieces(graph_of(), messages, run_config, tokens=True):
                yield AIMessageChunk(content=piece)

        super().__init__(stream, name=f"parley_{agent}")  # type: ignore[arg-type]

    async def _whole(self, payload: Any, run_manager: AsyncCallbackManagerForChainRun,
                     config: RunnableConfig) -> AIMessageChunk:
        # `config` carries this run's child callbacks (tracing sees the graph under it);
        # `run_manager` is in the signature only because LangChain passes by name.
        messages, run_config = _prepare(payload, config, self.agent)
        pieces = [p async for p in _pieces(self.graph_of(), messages, run_config,
                                           tokens=False)]
        return AIMessageChunk(content="".join(pieces))

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None,
                      **kwargs: Any) -> AIMessageChunk:
        return await self._acall_with_config(self._whole, input, ensure_config(config),
                                             **kwargs)


def agent_runnable(graph_of: Callable[[], CompiledStateGraph], agent: str) -> Runnable[
        Any, Any]:
    """`graph_of` is called per request: the platform is built after the routes are."""
    return _AgentRunnable(graph_of, agent).with_types(
        input_type=ChatInput, output_type=ChatOutput)  # type: ignore[arg-type]


def add_agent_routes(app: FastAPI, agent_names: list[str]) -> None:
    async def with_user(config: dict[str, Any], request: Request) -> dict[str, Any]:
        # The user comes from the verified token; whatever the client put in
        # `configurable` is dropped.
        principal = get_current_user(request)
        profile = await get_profile(request, principal)
        return {**config, "configurable": {"user_id": principal.user_id, "profile": profile}}

    def graph_of(name: str) -> Callable[[], CompiledStateGraph]:
        return lambda: app.state.platform.agents[name].stateless_graph

    for name in agent_names:
        add_routes(
            app,
            agent_runnable(graph_of(name), name),
            path=f"/agents/{name}",
            playground_type="chat",
            per_req_config_modifier=with_user,
            dependencies=[Depends(current_user), Depends(enforce_rate_limit)],
            enabled_endpoints=["invoke", "batch", "stream", "stream_log", "stream_events",
                               "input_schema", "output_schema", "config_schema", "config_hashes",
                               "playground"],
        )
