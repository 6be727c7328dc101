"""Reading the history database (embedded shape): the reports tool's rows, and a thread's
messages to rebuild its short-term memory when Redis lost it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from sqlalchemy import select

from services.history import crud
from services.history.context import HistoryContext
from services.history.models import Message
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
        messages = [to_langchain(m) for m in rows]
        while messages and isinstance(messages[0], ToolMessage | AIMessage):
            messages.pop(0)  # start at a user message, never mid tool call
        return messages


def to_langchain(m: Message) -> AnyMessage:
    if m.role == "user":
        return HumanMessage(content=m.content, id=m.id)
    if m.role == "tool":
        return ToolMessage(content=m.content, id=m.id, name=m.name,
                           tool_call_id=m.tool_call_id or "")
    if m.role == "assistant":
        calls = (m.meta or {}).get("tool_calls", [])
        return AIMessage(content=m.content, id=m.id, tool_calls=calls)
    return SystemMessage(content=m.content, id=m.id)
