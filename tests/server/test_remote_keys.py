"""With the auth service elsewhere (PARLEY_AUTH_URL), the agent server fetches its signing
keys over HTTP: at first use, every few minutes, and when a token names a key it does not
know yet (a rotation). That fetch must not hold the event loop: here the key server is
held mid-answer while another request goes through."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from agents.fake import say
from tests.support.tokens import TokenFactory


@dataclass
class KeyServer:
    url: str = ""
    jwks: dict[str, Any] = field(default_factory=dict)
    gate: threading.Event = field(default_factory=threading.Event)
    waiting: threading.Event = field(default_factory=threading.Event)
    downloads: int = 0


@pytest.fixture
def key_server() -> Iterator[KeyServer]:
    keys = KeyServer()
    keys.gate.set()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/auth/.well-known/jwks.json":
                self.send_error(404)
                return
            keys.waiting.set()
            keys.gate.wait(15)
            keys.downloads += 1
            body = json.dumps(keys.jwks).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    keys.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield keys
    finally:
        keys.gate.set()
        server.shutdown()
        server.server_close()


async def test_fetching_keys_does_not_hold_other_requests(make_app, client_for,  # type: ignore[no-untyped-def]
                                                          key_server: KeyServer) -> None:
    old, new = TokenFactory(kid="old"), TokenFactory(kid="new")
    key_server.jwks = old.jwks()
    app = make_app([say("ok")], auth_enabled=True, auth_url=key_server.url)
    async with client_for(app) as client:
        first = await client.get("/agents", headers=old.headers("1"))
        again = await client.get("/agents", headers=old.headers("1"))
        assert (first.status_code, again.status_code, key_server.downloads) == (200, 200, 1)

        # The auth service rotates: a token signed with the new key makes the server refetch.
        key_server.jwks = {"keys": old.jwks()["keys"] + new.jwks()["keys"]}
        key_server.gate.clear()
        key_server.waiting.clear()
        await asyncio.sleep(1.1)  # refetches for unknown keys come at most once a second
        rotated = asyncio.create_task(client.get("/agents", headers=new.headers("2")))
        for _ in range(200):
            if key_server.waiting.is_set():
                break
            await asyncio.sleep(0.02)
        assert key_server.waiting.is_set(), "the rotated key was never fetched"
        health = await asyncio.wait_for(client.get("/healthz"), 10)
        held = not rotated.done()  # the fetch is still waiting for the key server
        key_server.gate.set()
        after = await rotated
    assert health.status_code == 200 and held
    assert after.status_code == 200 and key_server.downloads == 2
