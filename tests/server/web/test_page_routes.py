"""The chat page's routes without a browser: `/` for a signed-in browser only, its files
with the page's headers and all of them in the Python package, the cookie accepted on
`/auth/me`, and a profile changed there reaching the next answer."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from agents.fake import say
from server.web import STATIC_DIR
from services.tokens import ACCESS_COOKIE

PASSWORD = "a long enough password"
ROOT = Path(__file__).resolve().parents[3]
HTML = {"Accept": "text/html,application/xhtml+xml"}


async def signed_in_cookie(client, username: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Sign up through the login page as a browser does: the session is its cookie."""
    page = await client.post("/login", data={"username": username, "password": PASSWORD,
                                             "action": "register"})
    assert page.status_code == 303 and page.headers["location"] == "/"  # the chat page
    return {ACCESS_COOKIE: page.cookies[ACCESS_COOKIE]}


async def test_the_page_needs_a_session_and_comes_with_its_headers(
        make_auth_app, client_for, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    app = make_auth_app([say("ok")], redis_url=redis_url)
    async with client_for(app) as client:
        browser = await client.get("/", headers=HTML)
        script = await client.get("/web/js/app.js")
        escape = await client.get("/web/../settings.py")
        client.cookies.update(await signed_in_cookie(client, "ada"))
        page = await client.get("/", headers=HTML)
        me = await client.get("/auth/me")  # the cookie alone, as the page sends it
        client.cookies.clear()
        api = await client.get("/")
    assert browser.status_code == 303 and browser.headers["location"] == "/login?next=/"
    assert api.status_code == 401  # not a browser: no redirect
    assert page.status_code == 200 and '<script type="module" src="/web/js/app.js">' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert script.status_code == 200
    assert script.headers["content-type"].split(";")[0] in ("text/javascript",
                                                            "application/javascript")
    assert script.headers["x-content-type-options"] == "nosniff"
    assert escape.status_code == 404
    assert me.status_code == 200 and me.json()["username"] == "ada"


async def test_a_profile_changed_on_the_page_reaches_the_next_answer(
        make_auth_app, client_for, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    app = make_auth_app([say("ok")], redis_url=redis_url)
    async with client_for(app) as client:
        client.cookies.update(await signed_in_cookie(client, "bea"))
        await client.post("/chat", json={"message": "hello"})  # the profile is now cached
        changed = await client.patch("/auth/me", json={"preferred_language": "French"})
        await client.post("/chat", json={"message": "hello again"})
    assert changed.status_code == 200
    before, after = (str(call[0].content) for call in app.state.model.calls)
    assert "preferred language" not in before
    assert "Answer in the user's preferred language: French." in after


def test_every_file_of_the_page_ships_in_the_package() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["server.web"]
    files = [p.relative_to(STATIC_DIR.parent).as_posix() for p in STATIC_DIR.rglob("*")
             if p.is_file()]
    assert "static/js/app.js" in files
    left_out = [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert left_out == []
