"""Keyword-only functions over the history database. Every query names its user."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Session

from services.history.models import Message, Thread, utcnow
from services.history.schemas import MessageIn, MessageOut, ThreadOut

T = TypeVar("T")


# SQLite's integers are 64-bit signed: a larger cursor would overflow there, not compare.
_MAX_SEQ = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(str(seq).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The sequence number in a cursor from `encode_cursor`; ValueError for anything else,
    so a forged or mangled cursor is refused before it reaches the database."""
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        raw = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise ValueError("not base64") from exc
    digits = raw.decode("ascii", "replace")
    if not _DIGITS.fullmatch(digits) or int(digits) > _MAX_SEQ:
        raise ValueError("not a sequence number")
    return int(digits)


@dataclass(frozen=True)
class Turn:
    """Messages of one thread to store together."""

    user_id: str
    thread_id: str
    agent: str | None
    messages: Sequence[MessageIn]


def store_messages(*, session: Session, user_id: str, thread_id: str, agent: str | None,
                   messages: Sequence[MessageIn]) -> tuple[int, int]:
    """Add messages (creating the thread); ids the user already stored are skipped, so a
    redelivered turn changes nothing. The caller commits. Returns (stored, duplicates)."""
    return store_turns(session=session, turns=[Turn(user_id, thread_id, agent, messages)])[0]


def store_turns(*, session: Session, turns: Sequence[Turn]) -> list[tuple[int, int]]:
    """`store_messages` for many turns in a fixed number of statements: one lookup of the
    (user, message id) pairs, one of the threads, one insert each of new threads and
    messages, one update of the threads that grew. The caller commits. Returns (stored,
    duplicates) per turn.

    Core statements rather than ORM objects, and statements per batch rather than per turn:
    every turn comes through here, and per-turn statements cost more than the database's own
    work (about 1 ms a turn, measured)."""
    existing = _stored_ids(session, list(dict.fromkeys(
        (turn.user_id, m.id) for turn in turns for m in turn.messages)))
    keys = list(dict.fromkeys((turn.user_id, turn.thread_id) for turn in turns))
    known = _known_threads(session, keys)
    now = utcnow()
    new_threads: dict[tuple[str, str], dict[str, object]] = {}
    grown: set[tuple[str, str]] = set()
    rows: list[dict[str, object]] = []
    counts: list[tuple[int, int]] = []
    for turn in turns:
        key = (turn.user_id, turn.thread_id)
        fresh: list[MessageIn] = []
        for m in turn.messages:  # an id stored, or seen earlier in the batch, is kept once
            if (turn.user_id, m.id) not in existing:
                existing.add((turn.user_id, m.id))
                fresh.append(m)
        if key not in known and key not in new_threads:
            first_user = next((m.content for m in turn.messages if m.role == "user"), "")
            new_threads[key] = {"user_id": turn.user_id, "id": turn.thread_id,
                                "title": _title(first_user), "agent": turn.agent,
                                "created_at": now, "updated_at": now}
        elif key in known and fresh:
            grown.add(key)
        rows += [{"id": m.id, "user_id": turn.user_id, "thread_id": turn.thread_id,
                  "role": m.role, "content": m.content, "name": m.name,
                  "tool_call_id": m.tool_call_id, "meta": m.meta,
                  "created_at": _naive_utc(m.created_at) if m.created_at else now}
                 for m in fresh]
        counts.append((len(fresh), len(turn.messages) - len(fresh)))
    db = session.connection()
    if new_threads:
        db.execute(_INSERT_THREADS, list(new_threads.values()))
    for chunk in _chunks(list(grown), width=4):
        db.execute(_TOUCH_THREADS, {**_pairs(chunk), "now": now})
    if rows:
        db.execute(_INSERT_MESSAGES, rows)
    return counts


# Built once: Core statements on the tables with expanding IN parameters skip the ORM's
# per-call statement building, about half of a one-turn store's CPU (measured).
_threads: Table = Thread.__table__  # type: ignore[assignment]
_messages: Table = Message.__table__  # type: ignore[assignment]


def _pairs_in(table: Table) -> ColumnElement[bool]:
    """(user_id, id) among the `keys` pairs. The users and ids also go as plain IN lists:
    SQLite answers the pair list alone by scanning the whole index, a cost that grows with
    every row stored, and with them it searches the index for each pair."""
    return and_(table.c.user_id.in_(bindparam("users", expanding=True)),
                table.c.id.in_(bindparam("ids", expanding=True)),
                tuple_(table.c.user_id, table.c.id).in_(bindparam("keys", expanding=True)))


def _pairs(keys: list[tuple[str, str]]) -> dict[str, list[Any]]:
    return {"users": list({user for user, _ in keys}), "ids": list({id_ for _, id_ in keys}),
            "keys": keys}


_STORED_IDS = select(_messages.c.user_id, _messages.c.id).where(_pairs_in(_messages))
_KNOWN_THREADS = select(_threads.c.user_id, _threads.c.id).where(_pairs_in(_threads))
_TOUCH_THREADS = update(_threads).where(_pairs_in(_threads)).values(
    updated_at=bindparam("now"))
_INSERT_THREADS = insert(_threads)
_INSERT_MESSAGES = insert(_messages)
_IN_PARAMETERS = 500  # bound parameters per IN list, well under every database's limit


def _chunks(items: list[T], width: int = 1) -> Iterator[list[T]]:
    """`items` in slices of at most _IN_PARAMETERS parameters (`width` per item)."""
    size = _IN_PARAMETERS // width
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _stored_ids(session: Session, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (user_id, message id) pairs are stored: ids are unique per user only."""
    db = session.connection()
    return {(user_id, message_id) for chunk in _chunks(keys, width=4)
            for user_id, message_id in db.execute(_STORED_IDS, _pairs(chunk))}


def _known_threads(session: Session, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    db = session.connection()
    return {(user_id, thread_id) for chunk in _chunks(keys, width=4)
            for user_id, thread_id in db.execute(_KNOWN_THREADS, _pairs(chunk))}


def _naive_utc(moment: datetime) -> datetime:
    """The columns hold naive UTC: convert an offset first, or 12:00+02:00 would read 12:00.
    A naive time is taken as UTC already."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _title(text: str) -> str:
    line = " ".join(text.split())
    return (line[:57] + "...") if len(line) > 60 else line or "New conversation"


def page_messages(*, session: Session, user_id: str, thread_id: str, limit: int,
                  before: int | None) -> tuple[list[Message], int | None]:
    """Newest first; keyset on the insertion sequence, so equal timestamps never skip."""
    query = (select(Message).where(Message.user_id == user_id, Message.thread_id == thread_id)
             .order_by(Message.seq.desc()).limit(limit + 1))
    if before is not None:
        # Bound as BIGINT: PostgreSQL's seq is a 32-bit INTEGER, and a cursor past its range
        # (any up to _MAX_SEQ is valid) must compare, not fail casting to INTEGER.
        query = query.where(Message.seq < bindparam("before", before, type_=BigInteger))
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


def rename_thread(*, session: Session, user_id: str, thread_id: str,
                  title: str) -> ThreadOut | None:
    """Retitle the user's thread and commit; None if they have no such thread."""
    thread = get_thread(session=session, user_id=user_id, thread_id=thread_id)
    if thread is None:
        session.rollback()
        return None
    thread.title = title
    session.flush()
    described = describe_thread(session=session, thread=thread)
    session.commit()  # last: a write session holds no lock once this returns
    return described


def describe_thread(*, session: Session, thread: Thread) -> ThreadOut:
    """One thread as `list_threads` shows it, however long ago it was updated."""
    count = session.scalar(select(func.count()).select_from(Message).where(
        Message.user_id == thread.user_id, Message.thread_id == thread.id)) or 0
    return ThreadOut(id=thread.id, title=thread.title, agent=thread.agent,
                     message_count=count, created_at=thread.created_at,
                     updated_at=thread.updated_at)


def delete_thread(*, session: Session, user_id: str, thread_id: str) -> bool:
    """The thread and its messages; False if the user has no such thread. The caller
    commits."""
    session.execute(delete(Message).where(Message.user_id == user_id,
                                          Message.thread_id == thread_id))
    deleted = session.execute(delete(Thread).where(Thread.user_id == user_id,
                                                   Thread.id == thread_id))
    return bool(getattr(deleted, "rowcount", 0))


def export_lines(*, session: Session, user_id: str,
                 since: datetime | None = None) -> Iterator[str]:
    """All of a user's data as JSON lines: each thread, then its messages, oldest first;
    with `since`, only the messages written since then."""
    for thread in list_threads(session=session, user_id=user_id, limit=1_000_000):
        yield '{"type":"thread","thread":' + thread.model_dump_json() + "}\n"
        query = select(Message).where(Message.user_id == user_id,
                                      Message.thread_id == thread.id)
        if since is not None:
            query = query.where(Message.created_at >= _naive_utc(since))
        for message in session.scalars(query.order_by(Message.seq)).yield_per(500):
            yield ('{"type":"message","message":'
                   + MessageOut.model_validate(message).model_dump_json() + "}\n")
