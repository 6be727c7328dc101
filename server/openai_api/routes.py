"""`GET /v1/models` and `POST /v1/chat/completions`: the agents behind OpenAI's Chat
Completions API, for OpenAI's clients and anything built on them (LangChain's ChatOpenAI).

The client keeps the conversation and sends it whole, as on the LangServe routes; the user
is the access token's (`Authorization: Bearer`, what OpenAI's clients send as the API key),
under the same rate limit as `/chat`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine
from typing import Any

from fastapi import APIRouter, Depends, Request, Response, status
from sse_starlette.sse import EventSourceResponse, ServerSentEvent

from server.deps import CurrentUser, PlatformDep, Profile
from server.openai_api.errors import OpenAIError, OpenAIRoute
from server.openai_api.run import Answer, Delta, UsageCounter, run_agent
from server.openai_api.wire import (
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    ModelCard,
    ModelList,
    to_langchain,
)
from server.platform import Agent, Platform
from server.ratelimit import enforce_rate_limit
from server.turns import public_error

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
             dependencies=[Depends(enforce_rate_limit)], responses={200: {
                 "content": {"text/event-stream": {}},
                 "description": "A chat.completion, or with `stream` its chunks as "
                                "Server-Sent Events ending with `data: [DONE]`."}})
async def chat_completions(body: ChatCompletionRequest, request: Request,
                           platform: PlatformDep, user: CurrentUser, profile: Profile
                           ) -> ChatCompletion | EventSourceResponse | Response:
    agent = _agent(platform, body.model)
    _check_sizes(platform, body)
    usage = UsageCounter()
    parts = run_agent(agent.stateless_graph, to_langchain(body.messages), agent=body.model,
                      user_id=user.user_id, profile=profile, usage=usage,
                      metrics=request.app.state.metrics, tokens=body.stream)
    completion = Completion(model=body.model)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return EventSourceResponse(_chunks(completion, parts, usage, include_usage),
                                   ping=15, sep="\n", ping_message_factory=_keepalive)
    answer = await _unless_gone(request, _answer(parts))
    if answer is None:  # the client went away; the run is cancelled, nobody reads this
        return Response(status_code=499)
    return completion.whole(answer, usage.usage())


async def _answer(parts: AsyncGenerator[Delta | Answer, None]) -> str:
    answer = ""
    try:
        async for part in parts:
            if isinstance(part, Answer):
                answer = part.text
    except Exception as exc:
        raise _failed(exc) from exc
    finally:
        await parts.aclose()
    return answer


async def _unless_gone(request: Request, work: Coroutine[Any, Any, str]) -> str | None:
    """`work`'s result, or None once the client has disconnected, `work` cancelled. The
    server does not cancel a plain request's handler when its client leaves, and OpenAI's
    clients send the request again after a timeout: without this, each retry would run
    the whole turn (its tools too) once more, all at once."""
    task = asyncio.ensure_future(work)
    try:
        while not (await asyncio.wait({task}, timeout=GONE_CHECK_SECONDS))[0]:
            if await request.is_disconnected():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                return None
        return task.result()
    finally:
        task.cancel()  # the handler itself cancelled: the run goes too


GONE_CHECK_SECONDS = 0.5


async def _chunks(completion: Completion, parts: AsyncGenerator[Delta | Answer, None],
                  usage: UsageCounter, include_usage: bool) -> AsyncIterator[dict[str, str]]:
    """The role first, then the answer's tokens, `finish_reason` once the answer is whole,
    the usage when asked for once the run is over, and `[DONE]`. A failed run ends the
    stream with an error object instead, and no `[DONE]`."""
    yield {"data": completion.chunk({"role": "assistant", "content": ""},
                                    with_usage=include_usage)}
    finished = False
    try:
        async for part in parts:
            if isinstance(part, Delta):
                yield {"data": completion.chunk({"content": part.text},
                                                with_usage=include_usage)}
            elif not finished:
                finished = True
                yield {"data": completion.chunk({}, finish_reason="stop",
                                                with_usage=include_usage)}
    except Exception as exc:
        yield {"data": json.dumps(_failed(exc).body())}
        return
    finally:
        await parts.aclose()
    if not finished:
        yield {"data": completion.chunk({}, finish_reason="stop", with_usage=include_usage)}
    if include_usage:
        yield {"data": completion.usage_chunk(usage.usage())}
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


def _failed(exc: Exception) -> OpenAIError:
    # OpenAI's clients retry a 500 twice by default: a turn that ran tools (sent a message,
    # wrote a file) before failing would run them again. The header tells them not to.
    return OpenAIError(status.HTTP_500_INTERNAL_SERVER_ERROR, public_error(exc),
                       headers={"x-should-retry": "false"})


@router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                  include_in_schema=False)
async def unknown(path: str, request: Request) -> None:
    raise OpenAIError(status.HTTP_404_NOT_FOUND,
                      f"Invalid URL ({request.method} /v1/{path}): {_OFFERED}",
                      code="unknown_url")
