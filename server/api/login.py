"""A small login page for browsers: it signs in through the auth service and keeps the
access token in an HttpOnly cookie, which the gateway accepts like a Bearer header, so the
chat page (`/`) and the LangServe playground work behind auth."""

from __future__ import annotations

import html
from typing import Annotated

import httpx
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from server.api.deps import ServicesDep, SettingsDep
from services.tokens import ACCESS_COOKIE

router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Parley: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body {{ font-family: system-ui, sans-serif; background: #f5f6fa; display: grid;
        place-items: center; min-height: 100vh; margin: 0; }}
 form {{ background: white; padding: 2rem; border-radius: 12px; width: 20rem;
        box-shadow: 0 2px 12px #0001; display: grid; gap: .75rem; }}
 input, button {{ font: inherit; padding: .6rem; border-radius: 8px; border: 1px solid #ccd; }}
 button {{ background: #1d3557; color: white; border: none; cursor: pointer; }}
 button.secondary {{ background: white; color: #1d3557; border: 1px solid #1d3557; }}
 .error {{ color: #b00020; }} h1 {{ margin: 0 0 .5rem; font-size: 1.4rem; }}
</style></head>
<body><form method="post" action="/login">
 <h1>Sign in to Parley</h1>
 {error}
 <input type="hidden" name="next" value="{next}">
 <label>Username
  <input name="username" autocomplete="username" required value="{username}"></label>
 <label>Password
  <input name="password" type="password" autocomplete="current-password" required></label>
 <button type="submit" name="action" value="login">Sign in</button>
 <button type="submit" name="action" value="register" class="secondary">Create account</button>
</form></body></html>"""


def safe_next(target: str | None) -> str:
    """Only same-site paths, so the page cannot be used to redirect elsewhere; the chat
    page by default."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


def page(next_url: str, error: str = "", username: str = "", status: int = 200,
         refused: httpx.Response | None = None) -> HTMLResponse:
    message = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    # A refusal's Retry-After (failed logins limited) goes on to the browser and its tools.
    headers = {"Retry-After": refused.headers["retry-after"]} \
        if refused is not None and "retry-after" in refused.headers else None
    return HTMLResponse(_PAGE.format(error=message, next=html.escape(next_url),
                                     username=html.escape(username)), status_code=status,
                        headers=headers)


@router.get("/login")
async def login_page(next: str | None = None) -> HTMLResponse:
    return page(safe_next(next))


@router.post("/login")
async def login(request: Request, services: ServicesDep, settings: SettingsDep,
                username: Annotated[str, Form()], password: Annotated[str, Form()],
                next: Annotated[str, Form()] = "",
                action: Annotated[str, Form()] = "login") -> Response:
    target = safe_next(next)
    creds = {"username": username, "password": password}
    async with services.auth_client(caller=_caller(request)) as auth:
        if action == "register":
            created = await auth.post("/auth/register", json=creds)
            if created.status_code != 201:
                return page(target, _detail(created), username, created.status_code, created)
        response = await auth.post("/auth/login", json=creds)
    if response.status_code != 200:
        return page(target, _detail(response), username, response.status_code, response)
    tokens = response.json()
    redirect = RedirectResponse(target, status_code=303)
    # Secure whenever the browser came over HTTPS (uvicorn takes the scheme from a trusted
    # proxy's X-Forwarded-Proto), so the cookie never travels in clear text after.
    redirect.set_cookie(ACCESS_COOKIE, tokens["access_token"], max_age=tokens["expires_in"],
                        httponly=True, samesite="lax",
                        secure=settings.secure_cookies or request.url.scheme == "https")
    return redirect


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(ACCESS_COOKIE)
    return response


def _caller(request: Request) -> str | None:
    """The browser's address as this server resolved it, the one the login limiter must
    count. uvicorn takes X-Forwarded-For only from its trusted proxies
    (FORWARDED_ALLOW_IPS), so a browser's own header cannot pick a fresh address per try."""
    return request.client.host if request.client else None


def _detail(response: object) -> str:
    try:
        detail = response.json().get("detail")  # type: ignore[attr-defined]
    except ValueError:
        return "sign-in failed"
    if isinstance(detail, list):  # validation errors: say what to fix
        return "; ".join(str(d.get("msg", d)) for d in detail)
    return str(detail)
