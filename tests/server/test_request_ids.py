"""The request-id middleware and the log levels of chatty libraries, on a real server."""

from __future__ import annotations

import logging
import re

import httpx
import pytest
from fastapi import FastAPI

from server.logs import RequestContext, configure_logging
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


def test_httpx_request_lines_stay_out_of_info_logs() -> None:
    # Tools call outside APIs with what users wrote in the URL (a weather place name).
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("httpx").level
    try:
        configure_logging("json", "INFO")
        assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
        assert logging.getLogger("httpx").isEnabledFor(logging.WARNING)
        configure_logging("text", "DEBUG")  # asked for everything: still not URLs at INFO
        assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    finally:
        root.handlers[:], level, httpx_level = saved
        root.setLevel(level)
        logging.getLogger("httpx").setLevel(httpx_level)
