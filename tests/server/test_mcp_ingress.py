"""`/mcp` through the ingress: a real nginx with the template's routing in front of a real
Parley, and the real MCP client asking an agent through it (streamed answers unbuffered)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client

from agents.fake import say
from deploy.nginx_config import local_conf
from server.embedded.redis_server import free_port
from tests.deploy.tools import nginx_binary
from tests.server.api.openai.support import login


@contextmanager
def ingress(tmp_path: Path, upstream: str) -> Iterator[str]:
    """A real nginx with the template's routing, every upstream `upstream`."""
    nginx = nginx_binary()
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(local_conf(tmp_path, listen=f"127.0.0.1:{port}", agents=[upstream],
                               auth=upstream, history=upstream))
    process = subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp_path), "-g",
                                "daemon off;"], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None, "nginx exited"
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


async def test_an_mcp_client_asks_an_agent_through_nginx(make_auth_app: Any, live: Any,
                                                         tmp_path: Path) -> None:
    app = make_auth_app([say("Through the ingress.")], rate_limit_per_minute=0)
    with live(app) as url, ingress(tmp_path, url.removeprefix("http://")) as front:
        headers = {"Authorization": f"Bearer {login(front, 'ada')}"}
        async with streamablehttp_client(f"{front}/mcp", headers=headers) as (
                read, write, _), ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("ask_assistant", {"message": "hi"})
        assert not result.isError, result.content
        assert result.structuredContent is not None
        assert result.structuredContent["answer"] == "Through the ingress."
