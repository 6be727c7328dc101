"""Threads and messages (SQLAlchemy 2 typed ORM). Thread and message ids are chosen by
clients, so each is keyed by its owner and its id together: two users may pick the same."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKeyConstraint, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Thread(Base):
    __tablename__ = "threads"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    agent: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        ForeignKeyConstraint(["user_id", "thread_id"], ["threads.user_id", "threads.id"],
                             ondelete="CASCADE"),
        Index("ix_messages_thread_seq", "user_id", "thread_id", "seq"),
        # The idempotency key: a redelivered message is skipped, another user's is not.
        UniqueConstraint("user_id", "id", name="uq_messages_user_id_id"),
    )

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(128))  # unique per user, see above
    user_id: Mapped[str] = mapped_column(String(64))
    thread_id: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(String(128), default=None)
    tool_call_id: Mapped[str | None] = mapped_column(String(128), default=None)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
