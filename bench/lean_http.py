"""A small HTTP/1.1 client for the figures taken under concurrency: JSON POSTs over
kept-alive connections, the request's bytes built once per call, the response read by its
length. httpx costs the client process milliseconds of CPU a request, so at 32 callers one
client process on one core ran out before the servers did, and its turns/s measured itself
(docs/benchmarks.md). With this client the servers' core is what runs out."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class HTTPFailure(RuntimeError):
    """The server answered in a way this client does not read, or closed the connection."""


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    used: float  # monotonic time of the last response read on it

    def close(self) -> None:
        self.writer.close()


class JsonPoster:
    """POSTs JSON to one URL; each concurrent call takes an idle connection or opens one.

    A connection idle for longer than `keepalive` seconds is dropped rather than reused:
    uvicorn closes idle ones after 5 s, and a request sent as it closes would be lost."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, *,
                 keepalive: float = 2.0, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"{url}: only http:// URLs with a host are supported")
        self.host = parts.hostname
        self.port = parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self._head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                      f"Content-Type: application/json\r\n{extra}").encode("latin-1")
        self.keepalive = keepalive
        self.timeout = timeout
        self._idle: list[_Connection] = []

    async def post(self, body: Any) -> tuple[int, bytes]:
        """The status and body of one POST of `body` as JSON."""
        payload = json.dumps(body).encode()
        request = self._head + b"Content-Length: %d\r\n\r\n" % len(payload) + payload
        connection = self._take()
        if connection is None:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            connection = _Connection(reader, writer, time.monotonic())
        try:
            connection.writer.write(request)
            status, response, reusable = await asyncio.wait_for(
                _read_response(connection.reader), self.timeout)
        except BaseException:
            connection.close()
            raise
        if reusable:
            connection.used = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()
        return status, response

    def _take(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if now - connection.used < self.keepalive and not connection.reader.at_eof():
                return connection
            connection.close()
        return None

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
            with contextlib.suppress(OSError):
                await connection.writer.wait_closed()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body, and whether the connection may carry another request."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        raise HTTPFailure("the server closed the connection before answering") from exc
    lines = head.decode("latin-1").split("\r\n")
    try:
        version, code = lines[0].split(" ", 2)[:2]
        status = int(code)
    except ValueError as exc:
        raise HTTPFailure(f"not an HTTP status line: {lines[0]!r}") from exc
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    reusable = (version == "HTTP/1.1"
                and headers.get("connection", "").lower() != "close")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return status, await _read_chunked(reader), reusable
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"])), reusable
    return status, await reader.read(), False  # the body runs to the end of the connection


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, then the end
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)
