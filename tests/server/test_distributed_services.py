"""The same code, distributed: auth and history as services of their own on PostgreSQL,
the gateway verifying tokens with the auth service's JWKS over HTTP."""

from __future__ import annotations

import time

import httpx

from agents.fake import echo_first
from server.embedded.postgres_server import Postgres
from services.auth.app import create_app as create_auth
from services.auth.settings import AuthSettings
from services.history.app import create_app as create_history
from services.history.settings import HistorySettings
from tests.support.live import serve_in_thread

PASSWORD = "a long enough password"


def test_gateway_with_remote_auth_and_history(make_app, postgres_server: Postgres,
                                              redis_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    auth_db = postgres_server.create_database("dist_auth")
    history_db = postgres_server.create_database("dist_history")
    auth = create_auth(AuthSettings(database_url=auth_db, keys_dir=tmp_path / "keys"))
    with serve_in_thread(auth) as auth_url:
        history = create_history(HistorySettings(
            database_url=history_db, redis_url=redis_url, block_ms=200,
            jwks_url=f"{auth_url}/auth/.well-known/jwks.json"))
        gateway = make_app([echo_first], auth_enabled=True, auth_url=auth_url,
                           redis_url=redis_url)
        with serve_in_thread(history) as history_url, serve_in_thread(gateway) as url:
            httpx.post(f"{auth_url}/auth/register",
                       json={"username": "ada", "password": PASSWORD})
            tokens = httpx.post(f"{auth_url}/auth/login",
                                json={"username": "ada", "password": PASSWORD}).json()
            ada = {"Authorization": f"Bearer {tokens['access_token']}"}
            httpx.patch(f"{auth_url}/auth/me", headers=ada,
                        json={"custom_instructions": "Speak like a pirate."})
            turn = httpx.post(f"{url}/chat", headers=ada, timeout=30,
                              json={"message": "ahoy", "thread_id": "voyage"}).json()
            refused = httpx.post(f"{url}/chat", json={"message": "x"},
                                 headers={"Authorization": "Bearer forged.token.here"})
            mounted = httpx.get(f"{url}/auth/.well-known/jwks.json")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                page = httpx.get(f"{history_url}/history", headers=ada,
                                 params={"thread_id": "voyage"})
                if page.status_code == 200 and len(page.json()["messages"]) == 2:
                    break
                time.sleep(0.1)
    assert turn["message"]["content"] == "Your first message was: ahoy"
    assert refused.status_code == 401
    assert mounted.status_code == 404  # the gateway does not serve auth in this shape
    assert [m["content"] for m in reversed(page.json()["messages"])] == [
        "ahoy", "Your first message was: ahoy"]
    system_prompt = gateway.state.model.calls[0][0].content
    assert "Speak like a pirate." in system_prompt  # the profile came over HTTP
