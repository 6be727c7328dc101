"""Each service on its own serves Prometheus metrics of its requests."""

from __future__ import annotations

from pathlib import Path

import httpx

from services.auth.app import create_app as create_auth
from services.auth.settings import AuthSettings
from services.history.app import create_app as create_history
from services.history.settings import HistorySettings
from tests.support.tokens import TokenFactory


async def test_auth_and_history_count_their_requests(tmp_path: Path) -> None:
    auth = create_auth(AuthSettings(database_url=f"sqlite:///{tmp_path / 'a.db'}",
                                    keys_dir=tmp_path / "keys"))
    tokens = TokenFactory()
    history = create_history(HistorySettings(database_url=f"sqlite:///{tmp_path / 'h.db'}"),
                             tokens.verifier())
    texts = {}
    for name, app, call in (
            ("auth", auth, ("POST", "/auth/register", {"username": "ab", "password": "x"})),
            ("history", history, ("GET", "/history/threads", None))):
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
                method, path, body = call
                await client.request(method, path, json=body,
                                     headers=tokens.headers("ada") if name == "history" else {})
                texts[name] = (await client.get("/metrics")).text
    assert ('parley_http_requests_total{method="POST",route="/auth/register",status="422"} 1.0'
            in texts["auth"])
    assert ('parley_http_requests_total{method="GET",route="/history/threads",status="200"} 1.0'
            in texts["history"])
