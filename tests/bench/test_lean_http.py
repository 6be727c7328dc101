"""The bench's lean HTTP client against a real uvicorn server on 127.0.0.1: what it reads
is what the server sent, it keeps connections alive, and it lets go of the ones it must."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from bench.lean_http import JsonPoster
from tests.support.live import serve_in_thread


def echo_app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, object]:
        assert request.client is not None
        return {"body": await request.json(), "port": request.client.port,
                "auth": request.headers.get("authorization")}

    @app.post("/chunked")
    async def chunked(request: Request) -> StreamingResponse:
        body = await request.json()

        async def parts() -> AsyncIterator[bytes]:
            for word in body["words"]:
                yield word.encode()
                await asyncio.sleep(0)

        return StreamingResponse(parts(), media_type="text/plain")

    @app.post("/close")
    async def close(request: Request) -> JSONResponse:
        assert request.client is not None
        return JSONResponse({"port": request.client.port}, headers={"connection": "close"})

    @app.post("/refuse")
    async def refuse() -> JSONResponse:
        return JSONResponse({"detail": "no such question"}, status_code=422)

    return app


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve_in_thread(echo_app()) as served:
        yield served


async def test_it_sends_the_body_and_headers_and_reuses_the_connection(url: str) -> None:
    poster = JsonPoster(f"{url}/echo", {"Authorization": "Bearer t"})
    try:
        answers = []
        for n in range(3):
            status, body = await poster.post({"n": n, "text": "é ünïcode"})
            assert status == 200
            answers.append(json.loads(body))
    finally:
        await poster.aclose()
    assert [a["body"] for a in answers] == [{"n": n, "text": "é ünïcode"} for n in range(3)]
    assert {a["auth"] for a in answers} == {"Bearer t"}
    assert len({a["port"] for a in answers}) == 1  # one connection for the three


async def test_concurrent_calls_each_get_their_own_answer(url: str) -> None:
    poster = JsonPoster(f"{url}/echo")
    try:
        for _ in range(2):  # the second round runs on the connections the first opened
            results = await asyncio.gather(*(poster.post({"n": n}) for n in range(32)))
            assert [json.loads(body)["body"]["n"] for _status, body in results] \
                == list(range(32))
        assert 1 < len(poster._idle) <= 32
    finally:
        await poster.aclose()


async def test_a_chunked_body_is_read_whole(url: str) -> None:
    poster = JsonPoster(f"{url}/chunked")
    try:
        for _ in range(2):
            status, body = await poster.post({"words": ["one ", "two ", "three"]})
            assert (status, body) == (200, b"one two three")
    finally:
        await poster.aclose()


async def test_a_closed_or_expired_connection_is_not_reused(url: str) -> None:
    closing = JsonPoster(f"{url}/close")
    expiring = JsonPoster(f"{url}/echo", keepalive=0.0)
    try:
        ports = [json.loads((await closing.post({}))[1])["port"] for _ in range(2)]
        assert ports[0] != ports[1] and not closing._idle
        ports = [json.loads((await expiring.post({}))[1])["port"] for _ in range(2)]
        assert ports[0] != ports[1]
    finally:
        await closing.aclose()
        await expiring.aclose()


async def test_an_error_status_comes_back_with_its_body(url: str) -> None:
    poster = JsonPoster(f"{url}/refuse")
    try:
        status, body = await poster.post({})
    finally:
        await poster.aclose()
    assert status == 422 and json.loads(body) == {"detail": "no such question"}


def test_only_plain_http_urls() -> None:
    with pytest.raises(ValueError, match="only http://"):
        JsonPoster("https://127.0.0.1/chat")
