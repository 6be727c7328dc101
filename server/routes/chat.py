"""`POST /chat` (one JSON answer) and `POST /chat/stream` (Server-Sent Events)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field, field_validator
from sse_starlette.sse import EventSourceResponse

from server.deps import CurrentUser, PlatformDep, Profile
from server.platform import Agent, Platform
from server.ratelimit import enforce_rate_limit
from server.turns import TurnEvent, new_thread_id, stream_turn

router = APIRouter(prefix="/chat", tags=["chat"], dependencies=[Depends(enforce_rate_limit)])

THREAD_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


class ChatRequest(BaseModel):
    message: str = Field(description="The user's message.")
    thread_id: str | None = Field(
        default=None, description="Continue this thread; omit to start a new one.")
    agent: str = Field(default="assistant", description="Which agent answers (GET /agents).")

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("message is empty: send the text you want the agent to answer")
        return value

    @field_validator("thread_id")
    @classmethod
    def _thread_id(cls, value: str | None) -> str | None:
        if value is not None and not THREAD_ID.fullmatch(value):
            raise ValueError("thread_id must be 1-128 letters, digits or '_.:-'")
        return value


class ChatResponse(BaseModel):
    thread_id: str
    turn_id: str
    agent: str
    message: dict[str, Any] | None
    tool_calls: list[dict[str, Any]]
    error: str | None = None


def _resolve(platform: Platform, body: ChatRequest) -> Agent:
    if len(body.message) > platform.settings.max_message_chars:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"message is {len(body.message)} characters; the limit is "
            f"{platform.settings.max_message_chars}: shorten it or send it in parts",
        )
    agent = platform.agents.get(body.agent)
    if agent is None:
        known = ", ".join(sorted(platform.agents))
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"unknown agent {body.agent!r}; choose one of: {known}")
    return agent


@router.post("", response_model=ChatResponse)
async def chat(body: ChatRequest, request: Request, platform: PlatformDep, user: CurrentUser,
               profile: Profile) -> ChatResponse:
    agent = _resolve(platform, body)
    thread_id = body.thread_id or new_thread_id()
    turn_id = uuid.uuid4().hex
    message: dict[str, Any] | None = None
    error: str | None = None
    tools: list[dict[str, Any]] = []
    async for event in stream_turn(agent.graph, message=body.message, user_id=user.user_id,
                                   thread_id=thread_id, agent=body.agent, turn_id=turn_id,
                                   profile=profile, metrics=request.app.state.metrics,
                                   tokens=False, new_thread=body.thread_id is None):
        if event.event == "message":
            message = event.data
        elif event.event == "error":
            error = event.data["message"]
        elif event.event == "tool_end":
            tools.append(event.data)
    return ChatResponse(thread_id=thread_id, turn_id=turn_id, agent=body.agent,
                        message=message, tool_calls=tools, error=error)


@router.post("/stream", response_class=EventSourceResponse, responses={
    200: {"content": {"text/event-stream": {}},
          "description": "Events: token, tool_start, tool_end, message, error, done."}})
async def chat_stream(body: ChatRequest, request: Request, platform: PlatformDep,
                      user: CurrentUser, profile: Profile) -> EventSourceResponse:
    agent = _resolve(platform, body)
    thread_id = body.thread_id or new_thread_id()
    turn_id = uuid.uuid4().hex
    events = stream_turn(agent.graph, message=body.message, user_id=user.user_id,
                         thread_id=thread_id, agent=body.agent, turn_id=turn_id,
                         profile=profile, metrics=request.app.state.metrics,
                         new_thread=body.thread_id is None)
    return EventSourceResponse(_sse(events, turn_id), ping=15)


async def _sse(events: AsyncIterator[TurnEvent], turn_id: str) -> AsyncIterator[dict[str, str]]:
    seq = 0
    try:
        async for event in events:
            yield {"event": event.event, "id": f"{turn_id}:{seq}",
                   "data": json.dumps(event.data, default=str)}
            seq += 1
    finally:
        await events.aclose()  # type: ignore[attr-defined]
