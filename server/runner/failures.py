"""Which part a failed turn failed in, and what the user may be told: a message per kind,
with no internal address (a Redis URL, a model server's host) in it."""

from __future__ import annotations

import re
from collections.abc import Iterator

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from graphs.errors import ModelCallFailed
from server.runner.events import Failed

STORE_RETRY_AFTER = 5
OVERLOAD_RETRY_AFTER = 2

_ADDRESS = re.compile(
    r"[a-z][a-z0-9+.-]*://\S+"  # URLs
    r"|\[[0-9a-f:]+\](?::\d+)?"  # [IPv6]:port
    r"|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"  # IPv4[:port]
    r"|\b[a-z0-9][a-z0-9.-]*:\d{2,5}\b",  # host:port
    re.IGNORECASE)


def redact(text: str) -> str:
    return _ADDRESS.sub("[address]", text)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _overloaded(exc: BaseException) -> bool:
    # redis-py's pool refuses with MaxConnectionsError ("Too many connections") or, a
    # blocking pool past its timeout, "No connection available".
    text = str(exc)
    return type(exc).__name__ == "MaxConnectionsError" or "Too many connections" in text \
        or "No connection available" in text


def classify(exc: BaseException, *, turn_id: str) -> Failed:
    chain = list(_chain(exc))
    for error in chain:
        if isinstance(error, ModelCallFailed):
            return Failed("model", redact(
                f"The language model could not answer ({error}). Try again shortly.")[:500])
    if any(isinstance(e, RedisError) and _overloaded(e) for e in chain):
        return Failed("overload", "The server is too busy to keep this conversation right "
                      "now: nothing of this turn was kept. Try again shortly.",
                      retry_after=OVERLOAD_RETRY_AFTER)
    if any(isinstance(e, RedisError | SQLAlchemyError) for e in chain):
        return Failed("store", "The conversation store is unavailable: nothing of this turn "
                      "was kept. Try again shortly.", retry_after=STORE_RETRY_AFTER)
    return Failed("internal", f"The turn failed because of an error in the server "
                  f"({type(exc).__name__}); it is logged as turn {turn_id}.")


def http_status(failure: Failed) -> int:
    """The status an API without a streamed error event answers a failed turn with."""
    return {"model": 502, "store": 503, "overload": 503}.get(failure.kind, 500)
