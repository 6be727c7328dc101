"""With the auth service elsewhere (PARLEY_AUTH_URL), the agent server fetches its signing
keys over HTTP: at first use, every few minutes, and when a token names a key it does not
know yet (a rotation). That fetch must not hold the event loop: here the key server is
held mid-answer while another request goes through. And when the auth service is down,
chat goes on for tokens whose keys are known, and the others are told to come back."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from agents.fake import say
from services.auth.app import create_app as create_auth
from services.auth.settings import AuthSettings
from tests.support.live import serve_in_thread
from tests.support.tokens import TokenFactory

PASSWORD = "a long enough password"


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


def sign_up(auth_url: str, username: str) -> dict[str, str]:
    httpx.post(f"{auth_url}/auth/register", json={"username": username, "password": PASSWORD})
    tokens = httpx.post(f"{auth_url}/auth/login",
                        json={"username": username, "password": PASSWORD}).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def test_chat_goes_on_while_the_auth_service_is_down(make_app, tmp_path: Path  # type: ignore[no-untyped-def]
                                                     ) -> None:
    auth = create_auth(AuthSettings(database_url=f"sqlite:///{tmp_path / 'auth.db'}",
                                    keys_dir=tmp_path / "keys"))
    with ExitStack() as servers:
        auth_server = servers.enter_context(ExitStack())  # closed early: the outage
        auth_url = auth_server.enter_context(serve_in_thread(auth))
        ada, bob = sign_up(auth_url, "ada"), sign_up(auth_url, "bob")
        httpx.patch(f"{auth_url}/auth/me", headers=ada,
                    json={"custom_instructions": "Speak like a pirate."})
        gateway = make_app([say("ok")], auth_enabled=True, auth_url=auth_url)
        gateway.state.services.profile_ttl = 0  # every turn asks for the profile anew
        url = servers.enter_context(serve_in_thread(gateway))
        before = httpx.post(f"{url}/chat", headers=ada, json={"message": "ahoy"}, timeout=30)
        known = httpx.get(f"{url}/agents", headers=bob)  # verified; no profile fetched yet
        auth_server.close()

        ada_after = httpx.post(f"{url}/chat", headers=ada, json={"message": "ahoy"}, timeout=30)
        bob_after = httpx.post(f"{url}/chat", headers=bob, json={"message": "hi"}, timeout=30)
        # An agent server started during the outage has never had the keys.
        fresh = make_app([say("ok")], auth_enabled=True, auth_url=auth_url)
        with serve_in_thread(fresh) as fresh_url:
            refused = httpx.post(f"{fresh_url}/chat", headers=ada, json={"message": "ahoy"},
                                 timeout=30)
    assert (before.status_code, known.status_code) == (200, 200)
    assert ada_after.status_code == 200, ada_after.text
    assert bob_after.status_code == 200, bob_after.text  # no profile, still an answer
    prompts = [call[0].content for call in gateway.state.model.calls]
    assert len(prompts) == 3
    assert "Speak like a pirate." in prompts[1]  # Ada's last profile, however old
    assert "Speak like a pirate." not in prompts[2]
    assert refused.status_code == 503, refused.text
    assert "auth service cannot be reached" in refused.json()["detail"]
    assert int(refused.headers["Retry-After"]) > 0
