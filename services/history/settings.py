"""The history service's settings (`PARLEY_HISTORY_*` when it runs on its own)."""

from __future__ import annotations

import os
import socket

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.history.stream import DEAD_LETTER_STREAM, HISTORY_GROUP, TURN_STREAM
from services.tokens import AUDIENCE, ISSUER


class HistorySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARLEY_HISTORY_", extra="ignore")

    database_url: str = "sqlite:///data/history.db"
    redis_url: str | None = None  # the turn stream; unset: no consumer
    stream: str = TURN_STREAM
    dead_letter_stream: str = DEAD_LETTER_STREAM
    group: str = HISTORY_GROUP
    consumer: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    block_ms: int = 2000
    batch: int = 50
    # After a read that found fewer than `batch` turns, wait this long before the next, so
    # that a busy server's turns are stored in batches (one read, one thread hop, one XACK)
    # rather than one by one; history shows a turn at most this much later.
    linger_ms: int = 50
    claim_idle_ms: int = 60_000  # entries another consumer left unacked this long move here
    # Token verification: the auth service's JWKS (distributed shape)
    jwks_url: str | None = None
    issuer: str = ISSUER
    audience: str = AUDIENCE
