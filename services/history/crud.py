"""Keyword-only functions over the history database. Every query names its user."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from services.history.models import Message, Thread, utcnow
from services.history.schemas import MessageIn, MessageOut, ThreadOut


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(str(seq).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    padded = cursor + "=" * (-len(cursor) % 4)
    return int(base64.urlsafe_b64decode(padded.encode()).decode())


def store_messages(*, session: Session, user_id: str, thread_id: str, agent: str | None,
                   messages: Sequence[MessageIn]) -> tuple[int, int]:
    """Add messages (creating the thread); ids already stored are skipped, so a redelivered
    turn changes nothing. The caller commits. Returns (stored, duplicates).

    Core statements rather than ORM objects: every turn comes through here, and the unit of
    work's bookkeeping cost more than the database did (about 1 ms a turn, measured)."""
    ids = [m.id for m in messages]
    existing = set(session.scalars(select(Message.id).where(Message.id.in_(ids))))
    fresh = [m for m in messages if m.id not in existing]
    now = utcnow()
    known = session.execute(select(Thread.id).where(Thread.user_id == user_id,
                                                    Thread.id == thread_id)).first()
    if known is None:
        first_user = next((m.content for m in messages if m.role == "user"), "")
        session.execute(insert(Thread).values(user_id=user_id, id=thread_id,
                                              title=_title(first_user), agent=agent,
                                              created_at=now, updated_at=now))
    elif fresh:
        session.execute(update(Thread).where(Thread.user_id == user_id, Thread.id == thread_id)
                        .values(updated_at=now))
    if fresh:
        session.execute(insert(Message), [
            {"id": m.id, "user_id": user_id, "thread_id": thread_id, "role": m.role,
             "content": m.content, "name": m.name, "tool_call_id": m.tool_call_id,
             "meta": m.meta,
             "created_at": m.created_at.replace(tzinfo=None) if m.created_at else now}
            for m in fresh])
    return len(fresh), len(messages) - len(fresh)


def _title(text: str) -> str:
    line = " ".join(text.split())
    return (line[:57] + "...") if len(line) > 60 else line or "New conversation"


def page_messages(*, session: Session, user_id: str, thread_id: str, limit: int,
                  before: int | None) -> tuple[list[Message], int | None]:
    """Newest first; keyset on the insertion sequence, so equal timestamps never skip."""
    query = (select(Message).where(Message.user_id == user_id, Message.thread_id == thread_id)
             .order_by(Message.seq.desc()).limit(limit + 1))
    if before is not None:
        query = query.where(Message.seq < before)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].seq if more and rows else None)


def get_thread(*, session: Session, user_id: str, thread_id: str) -> Thread | None:
    return session.get(Thread, (user_id, thread_id))


def list_threads(*, session: Session, user_id: str, limit: int = 100) -> list[ThreadOut]:
    counts = (select(Message.thread_id, func.count().label("n"))
              .where(Message.user_id == user_id).group_by(Message.thread_id).subquery())
    rows = session.execute(
        select(Thread, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.thread_id == Thread.id)
        .where(Thread.user_id == user_id)
        .order_by(Thread.updated_at.desc()).limit(limit))
    return [ThreadOut(id=t.id, title=t.title, agent=t.agent, message_count=n,
                      created_at=t.created_at, updated_at=t.updated_at) for t, n in rows]


def delete_thread(*, session: Session, user_id: str, thread_id: str) -> bool:
    session.execute(delete(Message).where(Message.user_id == user_id,
                                          Message.thread_id == thread_id))
    deleted = session.execute(delete(Thread).where(Thread.user_id == user_id,
                                                   Thread.id == thread_id))
    session.commit()
    return bool(getattr(deleted, "rowcount", 0))


def export_lines(*, session: Session, user_id: str) -> Iterator[str]:
    """All of a user's data as JSON lines: each thread, then its messages, oldest first."""
    for thread in list_threads(session=session, user_id=user_id, limit=1_000_000):
        yield '{"type":"thread","thread":' + thread.model_dump_json() + "}\n"
        for message in session.scalars(
                select(Message).where(Message.user_id == user_id,
                                      Message.thread_id == thread.id)
                .order_by(Message.seq)).yield_per(500):
            yield ('{"type":"message","message":'
                   + MessageOut.model_validate(message).model_dump_json() + "}\n")
