"""Times as the APIs send them: always with their zone. The databases keep naive UTC (the
same on SQLite and PostgreSQL `timestamp` columns); a naive time read back is UTC, and
says so on the wire (RFC 3339, as the OpenAPI `date-time` format requires)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


UtcDateTime = Annotated[datetime, AfterValidator(as_utc)]
