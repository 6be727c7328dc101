"""Structured logs: JSON lines in production, readable text in development, each record
carrying the request, user and thread ids of the request it belongs to."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
user_id: contextvars.ContextVar[str] = contextvars.ContextVar("user_id", default="-")
thread_id: contextvars.ContextVar[str] = contextvars.ContextVar("thread_id", default="-")
turn_id: contextvars.ContextVar[str] = contextvars.ContextVar("turn_id", default="-")

_CONTEXT = {"request_id": request_id, "user_id": user_id, "thread_id": thread_id,
            "turn_id": turn_id}


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _CONTEXT.items():
            setattr(record, name, var.get())
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in _CONTEXT:
            value = getattr(record, name, "-")
            if value != "-":
                entry[name] = value
        for key in ("duration_ms", "status", "method", "path", "agent", "tool", "outcome",
                    "failure", "action", "actor", "target", "role"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


# Parley's own loggers: `parley.*` and the modules' `__name__` loggers. Every other
# logger belongs to a library.
OWN_LOGGERS = ("parley", "agents", "tools", "graphs", "memory", "server", "services", "deploy")
# Never below WARNING, whatever is asked: httpx logs every request's URL at INFO, and
# tools put what users wrote in theirs (a weather lookup's place name).
PRIVATE_LOGGERS = ("httpx", "httpcore")
_asked: set[str] = set()  # library loggers a previous call set, reset by the next


def configure_logging(fmt: str = "text", level: str = "INFO",
                      library_levels: dict[str, str] | None = None) -> None:
    """Parley's loggers at `level`; libraries' at WARNING (their INFO lines at start-up,
    such as FAISS's loader reporting the AVX-512 build it did not find, read like failures
    and say nothing a user acts on), except those named in `library_levels`
    (PARLEY_LOG_LIBRARY_LEVELS, e.g. {"uvicorn": "INFO"})."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)-7s %(name)s [req=%(request_id)s user=%(user_id)s "
            "thread=%(thread_id)s] %(message)s"))
    own = logging.getLevelName(level.upper())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(logging.WARNING, own))
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(own)
    for name in _asked - set(library_levels or {}):
        logging.getLogger(name).setLevel(logging.NOTSET)
    for name, asked in (library_levels or {}).items():
        logging.getLogger(name).setLevel(asked.upper())
    _asked.clear()
    _asked.update(library_levels or {})
    for name in PRIVATE_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logging.WARNING, logger.getEffectiveLevel()))


class RequestContext:
    """Give each request an id (or keep the caller's `X-Request-ID`), echo it back, and log
    one line per request with its status and duration."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = logging.getLogger("parley.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = _caller_request_id(headers.get(b"x-request-id", b"")) or uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.log.info("%s %s %s", scope["method"], scope["path"], status, extra={
                "method": scope["method"], "path": scope["path"], "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1)})
            request_id.reset(token)


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def _caller_request_id(raw: bytes) -> str | None:
    """The caller's id when it is a plain token: it goes into every log line and back into
    a response header, so anything else (non-ASCII bytes, spaces) is replaced by ours."""
    text = raw.decode("latin-1")
    return text if _REQUEST_ID.fullmatch(text) else None
