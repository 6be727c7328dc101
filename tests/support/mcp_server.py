"""A small real MCP server (the SDK's FastMCP) for tests, over stdio or streamable HTTP.

    python -m tests.support.mcp_server stdio
    python -m tests.support.mcp_server http PORT

Tools: `echo`, `count` (calls so far in this session), `whoami` (the Authorization header
it was called with), `slow` (sleeps), `crash` (the process dies mid-call)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mcp.server.fastmcp import Context, FastMCP

ROOT = Path(__file__).resolve().parents[2]


def build(port: int = 0) -> FastMCP:
    server = FastMCP("test-tools", host="127.0.0.1", port=port, log_level="WARNING")
    counts: dict[int, int] = {}

    @server.tool()
    def echo(text: str) -> str:
        """Say the text back."""
        return f"echo: {text}"

    @server.tool()
    def count(ctx: Context[Any, Any, Any]) -> str:
        """How many times this tool was called in this session."""
        key = id(ctx.session)
        counts[key] = counts.get(key, 0) + 1
        return f"count {counts[key]}"

    @server.tool()
    def whoami(ctx: Context[Any, Any, Any]) -> str:
        """The credential this call came with."""
        request = ctx.request_context.request
        header = request.headers.get("authorization") if request is not None else None
        return f"credential {header or 'none'}"

    @server.tool()
    async def slow(seconds: float) -> str:
        """Wait, then answer."""
        await asyncio.sleep(seconds)
        return f"slept {seconds}"

    @server.tool()
    def crash() -> str:
        """The server dies while running this."""
        os._exit(3)

    return server


def stdio_entry(**extra: Any) -> dict[str, Any]:
    """A servers-file entry that runs this server over stdio."""
    return {"transport": "stdio", "command": sys.executable,
            "args": ["-m", "tests.support.mcp_server", "stdio"], "cwd": str(ROOT), **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def http_server(port: int, *, timeout: float = 30.0) -> Iterator[subprocess.Popen[bytes]]:
    """This server on 127.0.0.1:`port` (streamable HTTP at /mcp), killed on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.mcp_server", "http", str(port)], cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the test MCP server exited with {process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield process
    finally:
        process.kill()
        process.wait(10)


if __name__ == "__main__":
    if sys.argv[1] == "stdio":
        build().run("stdio")
    else:
        build(int(sys.argv[2])).run("streamable-http")
