"""Reports read the caller's messages from the history database (embedded shape)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

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
