"""Reading history: the reports tool's rows, and a thread's messages to rebuild its
short-term memory when Redis lost it. From the database where the history service is
mounted in this process (embedded), over its HTTP API as the caller where it runs apart
(distributed)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime

import httpx
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from sqlalchemy import select

from server import caller
from services.history import crud
from services.history.context import HistoryContext
from services.history.models import Message
from services.history.schemas import MessageOut
from tools.reports import HistoryRow


class HistoryDatabaseReader:
    def __init__(self, history: HistoryContext) -> None:
        self.history = history

    def _rows(self, user_id: str, since: datetime) -> list[HistoryRow]:
        with self.history.sessions() as session:
            query = (select(Message).where(Message.user_id == user_id,
                                           Message.created_at >= since)
                     .order_by(Message.seq))
            return [HistoryRow(thread_id=m.thread_id, role=m.role, content=m.content,
                               name=m.name, created_at=m.created_at)
                    for m in session.scalars(query)]

    async def rows(self, user_id: str, since: datetime) -> Sequence[HistoryRow]:
        return await asyncio.to_thread(self._rows, user_id, since)

    def _thread(self, user_id: str, thread_id: str, limit: int) -> list[Message]:
        with self.history.sessions() as session:
            rows, _ = crud.page_messages(session=session, user_id=user_id,
                                         thread_id=thread_id, limit=limit, before=None)
            return list(reversed(rows))

    async def thread_messages(self, user_id: str, thread_id: str, limit: int = 50
                              ) -> list[AnyMessage]:
        """The thread's latest messages, oldest first, as LangChain messages (with their
        stored ids, so publishing them again changes nothing)."""
        rows = await asyncio.to_thread(self._thread, user_id, thread_id, limit)
        return from_user_message([to_langchain(m) for m in rows])


class HistoryHttpReader:
    """The same reads from a history service of its own, as the user whose turn is running
    (their access token, from `server.caller`): the service checks the owner itself."""

    def __init__(self, base_url: str, *, timeout: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.transport = transport

    def _client(self, user_id: str) -> httpx.AsyncClient:
        token = caller.access_token.get()
        if token is None:
            raise RuntimeError(f"history read for user {user_id} outside a user's request: "
                               "the history service needs their access token")
        return httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout,
                                 transport=self.transport,
                                 headers={"Authorization": f"Bearer {token}"})

    async def rows(self, user_id: str, since: datetime) -> Sequence[HistoryRow]:
        async with self._client(user_id) as client:
            response = await client.get("/history/export",
                                        params={"since": since.isoformat()})
        response.raise_for_status()
        rows = []
        # Lines end at "\n" only: splitlines() would also cut at U+2028 and the like,
        # which JSON leaves unescaped inside a message's text.
        for line in filter(None, response.text.split("\n")):
            item = json.loads(line)
            if item.get("type") == "message":
                m = MessageOut.model_validate(item["message"])
                rows.append(HistoryRow(thread_id=m.thread_id, role=m.role, content=m.content,
                                       name=m.name, created_at=m.created_at))
        return rows

    async def thread_messages(self, user_id: str, thread_id: str, limit: int = 50
                              ) -> list[AnyMessage]:
        async with self._client(user_id) as client:
            response = await client.get("/history", params={"thread_id": thread_id,
                                                            "limit": limit})
        if response.status_code == 404:
            return []
        response.raise_for_status()
        page = [MessageOut.model_validate(m) for m in response.json()["messages"]]
        return from_user_message([to_langchain(m) for m in reversed(page)])  # newest first


def from_user_message(messages: list[AnyMessage]) -> list[AnyMessage]:
    """Start at a user message, never in the middle of a tool call."""
    while messages and isinstance(messages[0], ToolMessage | AIMessage):
        messages.pop(0)
    return messages


def to_langchain(m: Message | MessageOut) -> AnyMessage:
    if m.role == "user":
        return HumanMessage(content=m.content, id=m.id)
    if m.role == "tool":
        return ToolMessage(content=m.content, id=m.id, name=m.name,
                           tool_call_id=m.tool_call_id or "")
    if m.role == "assistant":
        calls = (m.meta or {}).get("tool_calls", [])
        return AIMessage(content=m.content, id=m.id, tool_calls=calls)
    return SystemMessage(content=m.content, id=m.id)
