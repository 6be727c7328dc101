"""The access token of the request being served, for code that calls another service as
the user (the distributed history reader, deep inside a tool or the recall node). A
context variable, not run config: config is traced and logged, a token must not be."""

from __future__ import annotations

import contextvars

access_token: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "access_token", default=None)
