"""Cross-site requests with the session cookie are refused before anything runs; the
same requests from the server's own pages, or with a bearer token, go through; and the
cookie is Secure whenever the browser came over HTTPS."""

from __future__ import annotations

from typing import Any

import httpx

from agents.fake import say
from services.tokens import ACCESS_COOKIE

FORGED = {"input": {"messages": [{"type": "human", "content": "buy everything"}]}}


async def signed_in(client: httpx.AsyncClient) -> str:
    await client.post("/auth/register", json={"username": "ada",
                                              "password": "a long enough password"})
    tokens = (await client.post("/auth/login", json={
        "username": "ada", "password": "a long enough password"})).json()
    return str(tokens["access_token"])


async def test_a_forged_cross_site_request_runs_no_turn(make_auth_app: Any,
                                                       client_for: Any) -> None:
    app = make_auth_app([say("done")])
    async with client_for(app) as client:
        token = await signed_in(client)
        cookie = {"cookie": f"{ACCESS_COOKIE}={token}"}

        async def post(headers: dict[str, str], body: Any = FORGED, json: bool = False
                       ) -> httpx.Response:
            if json:
                return await client.post("/agents/assistant/invoke", json=body,
                                         headers=headers)
            return await client.post("/agents/assistant/invoke", content=str(body).encode(),
                                     headers={"content-type": "text/plain", **headers})

        evil = await post({**cookie, "origin": "http://evil.example"})
        evil_site = await post({**cookie, "sec-fetch-site": "cross-site"}, json=True)
        no_origin_text = await post(cookie)
        calls_before = len(app.state.model.calls)
        own = await post({**cookie, "origin": "http://parley"}, json=True)
        own_site = await post({**cookie, "sec-fetch-site": "same-origin"}, json=True)
        script = await post(cookie, json=True)  # JSON cannot be sent cross-site unasked
        bearer = await post({"authorization": f"Bearer {token}",
                             "origin": "http://evil.example"}, json=True)
        chat = await client.post("/chat", json={"message": "hi"},
                                 headers={**cookie, "origin": "http://evil.example"})
        delete = await client.delete("/memories", headers={**cookie,
                                                           "sec-fetch-site": "cross-site"})
    for refused in (evil, evil_site, no_origin_text, chat, delete):
        assert refused.status_code == 403 and "cross-site" in refused.json()["detail"]
    assert calls_before == 0  # nothing the forged requests sent reached the model
    for allowed in (own, own_site, script, bearer):
        assert allowed.status_code == 200, allowed.text


async def test_the_cookie_is_secure_over_https(make_auth_app: Any, client_for: Any) -> None:
    app = make_auth_app([say("hi")])
    async with client_for(app) as client:
        await signed_in(client)
        form = {"username": "ada", "password": "a long enough password", "next": "/"}
        plain = await client.post("/login", data=form)
    async with client_for(app) as client:
        secure_client = httpx.AsyncClient(transport=client._transport,
                                          base_url="https://parley")
        async with secure_client:
            secure = await secure_client.post("/login", data=form)
        cross = await client.post("/login", data=form, headers={"origin": "http://evil.example"})
    assert "secure" not in plain.headers["set-cookie"].lower()
    assert "secure" in secure.headers["set-cookie"].lower()
    assert cross.status_code == 403
