"""`GET /v1/models` and `POST /v1/chat/completions`: the agents behind OpenAI's Chat
Completions API, for OpenAI's clients and anything built on them (LangChain's ChatOpenAI).

The client keeps the conversation and sends it whole, as on the LangServe routes; the user
is the access token's (`Authorization: Bearer`, what OpenAI's clients send as the API key),
under the same rate limit as `/chat`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request, Response, status
from sse_starlette.sse import EventSourceResponse, ServerSentEvent

from graphs.context import TurnContext
from server.api.deps import (
    Admitted,
    CurrentUser,
    PlatformDep,
    Profile,
    RateLimited,
    RunnerDep,
)
from server.api.disconnect import unless_gone
from server.api.openai.errors import OpenAIError, OpenAIRoute
from server.api.openai.wire import (
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    ModelCard,
    ModelList,
    to_langchain,
)
from server.api.openai.wire import Usage as WireUsage
from server.approval import waiting_text
from server.platform import Agent, Platform
from server.runner import Answer, ChatEvent, Failed, Interrupted, StepStarted, Token, Usage
from server.runner.failures import http_status

router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute)

_STARTED = int(time.time())  # each model's `created`: when this server started
_OFFERED = "this server offers GET /v1/models and POST /v1/chat/completions"


@router.get("/models", response_model=ModelList)
async def list_models(platform: PlatformDep, _user: CurrentUser) -> ModelList:
    return ModelList(data=[ModelCard(id=name, created=_STARTED)
                           for name in sorted(platform.agents)])


@router.get("/models/{model}", response_model=ModelCard)
async def get_model(model: str, platform: PlatformDep, _user: CurrentUser) -> ModelCard:
    _agent(platform, model)
    return ModelCard(id=model, created=_STARTED)


@router.post("/chat/completions", response_model=ChatCompletion,
             dependencies=[RateLimited, Admitted], responses={200: {
                 "content": {"text/event-stream": {}},
                 "description": "A chat.completion, or with `stream` its chunks as "
                                "Server-Sent Events ending with `data: [DONE]`."}})
async def chat_completions(body: ChatCompletionRequest, request: Request,
                           platform: PlatformDep, runner: RunnerDep, user: CurrentUser,
                           profile: Profile) -> ChatCompletion | EventSourceResponse | Response:
    agent = _agent(platform, body.model)
    _check_sizes(platform, body)
    turn_id = uuid.uuid4().hex
    # The client keeps the conversation: nothing is stored for this thread.
    ctx = TurnContext(user_id=user.user_id, thread_id=f"openai:{turn_id}", agent=body.model,
                      turn_id=turn_id, persist=False, profile=profile)
    events = runner.stream(agent.stateless_graph, ctx, to_langchain(body.messages),
                           tokens=body.stream)
    completion = Completion(model=body.model)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return EventSourceResponse(_chunks(completion, events, include_usage),
                                   ping=15, sep="\n", ping_message_factory=_keepalive)
    answered = await unless_gone(request, _answer(events))
    if answered is None:  # the client went away; the run is cancelled, nobody reads this
        return Response(status_code=499)
    return completion.whole(*answered)


async def _answer(events: AsyncIterator[ChatEvent]) -> tuple[str, WireUsage]:
    answer, usage = "", WireUsage()
    try:
        async for event in events:
            if isinstance(event, Answer):
                answer = event.content
            elif isinstance(event, Interrupted):  # a call waits for approval: none ran
                answer = waiting_text(event.interrupts)
            elif isinstance(event, Usage):
                usage = _wire_usage(event)
            elif isinstance(event, Failed):
                raise _failed(event)
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    return answer, usage


async def _chunks(completion: Completion, events: AsyncIterator[ChatEvent],
                  include_usage: bool) -> AsyncIterator[dict[str, str]]:
    """The role first, then the answer's tokens (each step's words a blank line after the
    last step's), `finish_reason` once the answer is whole, the usage when asked for,
    and `[DONE]`. A failed run ends the stream with an error object instead, and no
    `[DONE]`."""
    yield {"data": completion.chunk({"role": "assistant", "content": ""},
                                    with_usage=include_usage)}
    spoke = new_step = False
    usage = WireUsage()
    try:
        async for event in events:
            if isinstance(event, StepStarted):
                new_step = True
            elif isinstance(event, Token):
                lead = "\n\n" if spoke and new_step else ""
                spoke, new_step = True, False
                yield {"data": completion.chunk({"content": lead + event.text},
                                                with_usage=include_usage)}
            elif isinstance(event, Interrupted):  # a call waits for approval: none ran
                lead = "\n\n" if spoke else ""
                yield {"data": completion.chunk(
                    {"content": lead + waiting_text(event.interrupts)},
                    with_usage=include_usage)}
                yield {"data": completion.chunk({}, finish_reason="stop",
                                                with_usage=include_usage)}
            elif isinstance(event, Answer):
                yield {"data": completion.chunk({}, finish_reason="stop",
                                                with_usage=include_usage)}
            elif isinstance(event, Usage):
                usage = _wire_usage(event)
            elif isinstance(event, Failed):
                yield {"data": json.dumps(_failed(event).body())}
                return
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    if include_usage:
        yield {"data": completion.usage_chunk(usage)}
    yield {"data": "[DONE]"}


def _keepalive() -> ServerSentEvent:
    """A comment line every 15 s, which clients skip, so proxies keep an idle stream."""
    return ServerSentEvent(comment="keep-alive", sep="\n")


def _agent(platform: Platform, name: str) -> Agent:
    agent = platform.agents.get(name)
    if agent is None:
        raise OpenAIError(status.HTTP_404_NOT_FOUND,
                          f"The model {name!r} does not exist: the models are this server's "
                          f"agents, one of: {', '.join(sorted(platform.agents))}",
                          param="model", code="model_not_found")
    return agent


def _check_sizes(platform: Platform, body: ChatCompletionRequest) -> None:
    """Each user message within the limit `/chat` sets; the agent's own answers, sent back
    as assistant messages, may be longer."""
    limit = platform.settings.max_message_chars
    for index, message in enumerate(body.messages):
        if message.role == "user" and len(message.content or "") > limit:
            raise OpenAIError(
                status.HTTP_413_CONTENT_TOO_LARGE,
                f"messages[{index}].content is {len(message.content or '')} characters; the "
                f"limit is {limit}: shorten it or send it in parts",
                param=f"messages[{index}].content", code="string_above_max_length")


def _wire_usage(usage: Usage) -> WireUsage:
    return WireUsage(prompt_tokens=usage.prompt_tokens,
                     completion_tokens=usage.completion_tokens, total_tokens=usage.total_tokens)


def _failed(failure: Failed) -> OpenAIError:
    # OpenAI's clients retry a 5xx twice by default: a turn that ran tools (sent a message,
    # wrote a file) before failing would run them again. The header tells them not to.
    headers = {"x-should-retry": "false"}
    if failure.retry_after:
        headers["Retry-After"] = str(failure.retry_after)
    return OpenAIError(http_status(failure), failure.message, headers=headers)


@router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                  include_in_schema=False)
async def unknown(path: str, request: Request) -> None:
    raise OpenAIError(status.HTTP_404_NOT_FOUND,
                      f"Invalid URL ({request.method} /v1/{path}): {_OFFERED}",
                      code="unknown_url")
