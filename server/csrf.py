"""Cross-site request refusal for the session cookie. A browser sends the login page's
cookie with any request to this server, a forged one from another site included: a form
or `fetch` with a simple content type (text/plain, a form) needs no CORS preflight. So a
state-changing request that authenticates by the cookie (no Authorization header) must
come from this server's own pages: its `Sec-Fetch-Site` says same-origin, or its `Origin`
is this server's (or one of PARLEY_CORS_ORIGINS); without either, only a non-simple JSON
body is accepted, which no other site can send without the server's consent. Requests
with a bearer token or an API key are not a browser's ambient credentials, and pass."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from services.tokens import ACCESS_COOKIE

SAFE_METHODS = {b"GET", b"HEAD", b"OPTIONS"}
REFUSAL = ("cross-site request refused: a request that uses the session cookie must come "
           "from this server's own pages (or send its token in an Authorization header)")


class CrossSiteGuard:
    def __init__(self, app: ASGIApp, *, trusted_origins: list[str]) -> None:
        self.app = app
        self.trusted = {o.rstrip("/").lower() for o in trusted_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"].encode() in SAFE_METHODS or \
                self._allowed(scope):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": REFUSAL}).encode()
        await send({"type": "http.response.start", "status": 403, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _allowed(self, scope: Scope) -> bool:
        headers = {k.lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        site = headers.get(b"sec-fetch-site")
        origin = headers.get(b"origin")
        if site is not None:
            same_site = site in ("same-origin", "none")
        elif origin is not None:
            same_site = origin.rstrip("/").lower() in self.trusted | {
                self._own_origin(scope, headers)}
        else:
            same_site = None  # a client that names no origin: not a browser's form
        if scope["path"] == "/login":  # signing a browser in to someone else's account
            return same_site is not False
        by_cookie = f"{ACCESS_COOKIE}=" in headers.get(b"cookie", "") and not (
            headers.get(b"authorization") or headers.get(b"x-api-key"))
        if not by_cookie or same_site:
            return True
        if same_site is False:
            return False
        media = headers.get(b"content-type", "").split(";")[0].strip().lower()
        return media == "application/json"

    @staticmethod
    def _own_origin(scope: Scope, headers: dict[bytes, str]) -> str:
        host = headers.get(b"x-forwarded-host") or headers.get(b"host", "")
        return f"{scope.get('scheme', 'http')}://{host}".lower()
