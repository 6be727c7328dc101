"""The request-id middleware on a real server, and the log levels of libraries."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from server.logs import OWN_LOGGERS, PRIVATE_LOGGERS, RequestContext, configure_logging
from tests.support.live import serve_in_thread

HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def url() -> object:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"ok": "yes"}

    app.add_middleware(RequestContext)
    with serve_in_thread(app) as base:
        yield base


@pytest.mark.parametrize("sent", [b"\xff\xfe", b"two words", b"x" * 65, b"a\tb"])
def test_a_request_id_that_is_not_a_plain_token_is_replaced(url: str, sent: bytes) -> None:
    reply = httpx.get(f"{url}/ping", headers=[(b"X-Request-ID", sent)])
    assert reply.status_code == 200
    assert HEX_ID.fullmatch(reply.headers["x-request-id"])


def test_a_plain_request_id_is_kept(url: str) -> None:
    reply = httpx.get(f"{url}/ping", headers={"X-Request-ID": "edge-7f3a.2:1"})
    assert reply.status_code == 200 and reply.headers["x-request-id"] == "edge-7f3a.2:1"


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """configure_logging changes process-wide loggers: put them back for the next tests."""
    root = logging.getLogger()
    names = [*OWN_LOGGERS, *PRIVATE_LOGGERS, "faiss", "faiss.loader", "uvicorn"]
    saved = root.handlers[:], root.level, {n: logging.getLogger(n).level for n in names}
    try:
        yield
    finally:
        configure_logging()  # forgets the library levels it was asked for
        root.handlers[:], level, levels = saved
        root.setLevel(level)
        for name, was in levels.items():
            logging.getLogger(name).setLevel(was)


def test_httpx_request_lines_stay_out_of_info_logs(restored_logging: None) -> None:
    # Tools call outside APIs with what users wrote in the URL (a weather place name).
    configure_logging("json", "INFO")
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    assert logging.getLogger("httpx").isEnabledFor(logging.WARNING)
    configure_logging("text", "DEBUG")  # asked for everything: still not URLs at INFO
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    configure_logging("text", "DEBUG", {"httpx": "DEBUG"})  # not even when named
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)


def test_libraries_log_warnings_only_unless_asked(restored_logging: None) -> None:
    # FAISS's loader reports at INFO, with a ModuleNotFoundError, the AVX-512 build it
    # does not need: a line that reads like a failure on every start.
    configure_logging("text", "INFO")
    assert not logging.getLogger("faiss.loader").isEnabledFor(logging.INFO)
    assert not logging.getLogger("uvicorn.error").isEnabledFor(logging.INFO)
    assert logging.getLogger("faiss.loader").isEnabledFor(logging.WARNING)
    for own in ("parley", "server.platform", "memory.faiss_store", "services.history.x"):
        assert logging.getLogger(own).isEnabledFor(logging.INFO), own
    configure_logging("text", "DEBUG")
    assert logging.getLogger("server.platform").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("faiss.loader").isEnabledFor(logging.INFO)
    configure_logging("text", "INFO", {"faiss": "info"})  # PARLEY_LOG_LIBRARY_LEVELS
    assert logging.getLogger("faiss.loader").isEnabledFor(logging.INFO)
    configure_logging("text", "INFO")  # no longer asked
    assert not logging.getLogger("faiss.loader").isEnabledFor(logging.INFO)
    configure_logging("text", "ERROR")
    assert not logging.getLogger("server.platform").isEnabledFor(logging.WARNING)
    assert not logging.getLogger("faiss.loader").isEnabledFor(logging.WARNING)
