"""The login page signs in through the auth service, which counts failed logins per client
address: it must count each browser's address, not the gateway's own, in both shapes, and
a browser must not pick its address itself."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx

from agents.fake import say
from services.auth.app import create_app as create_auth
from services.auth.settings import AuthSettings
from tests.support.live import reset_sse_state, serve_in_thread

PASSWORD = "a long enough password"
GUESSER, NEIGHBOUR = "203.0.113.7", "198.51.100.20"
PLAYGROUND = "/agents/assistant/playground/"


def sign_in(username: str, password: str) -> dict[str, str]:
    return {"username": username, "password": password, "next": PLAYGROUND}


@asynccontextmanager
async def browsers(app: Any, *addresses: str) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One client per address, each connecting from that address, around the app's
    lifespan."""
    reset_sse_state()
    async with app.router.lifespan_context(app), AsyncExitStack() as stack:
        yield [await stack.enter_async_context(httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 40000)),
            base_url="http://parley")) for address in addresses]


async def test_failed_logins_from_one_browser_do_not_lock_out_the_others(
        make_app, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    app = make_app([say("ok")], auth_enabled=True, redis_url=redis_url)
    async with browsers(app, GUESSER, NEIGHBOUR) as (guesser, neighbour):
        await neighbour.post("/auth/register", json={"username": "carol", "password": PASSWORD})
        # Each try claims another address: the header is the browser's own, not believed.
        tries = [(await guesser.post("/login", data=sign_in(f"mallory{i}", "wrong guess"),
                                     headers={"X-Forwarded-For": f"192.0.2.{i}"})).status_code
                 for i in range(5)]
        carol = await neighbour.post("/login", data=sign_in("carol", PASSWORD))
        again = await guesser.post("/login", data=sign_in("carol", PASSWORD),
                                   headers={"X-Forwarded-For": "192.0.2.99"})
    assert tries == [401] * 5
    assert carol.status_code == 303 and carol.headers["location"] == PLAYGROUND
    assert again.status_code == 429 and "too many failed logins" in again.text
    assert 1 <= int(again.headers["retry-after"]) <= 300  # passed on from the auth service


@contextmanager
def served_auth(tmp_path: Path, redis_url: str) -> Iterator[str]:
    """The auth service on its own port; like uvicorn in deploy/, it takes the caller's
    address from X-Forwarded-For sent from 127.0.0.1 (the agent server, here)."""
    auth = create_auth(AuthSettings(database_url=f"sqlite:///{tmp_path / 'auth.db'}",
                                    keys_dir=tmp_path / "keys", redis_url=redis_url))
    with serve_in_thread(auth) as url:
        httpx.post(f"{url}/auth/register", json={"username": "carol", "password": PASSWORD})
        yield url


def test_distributed_login_page_counts_the_address_behind_the_proxy(
        make_app, redis_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with served_auth(tmp_path, redis_url) as auth_url:
        gateway = make_app([say("ok")], auth_enabled=True, auth_url=auth_url)
        # The test talks to the agent server from 127.0.0.1, a trusted proxy: as nginx
        # does, it names the browser in X-Forwarded-For.
        with serve_in_thread(gateway) as url, httpx.Client(base_url=url) as proxy:
            tries = [proxy.post("/login", data=sign_in(f"mallory{i}", "wrong guess"),
                                headers={"X-Forwarded-For": GUESSER}).status_code
                     for i in range(5)]
            carol = proxy.post("/login", data=sign_in("carol", PASSWORD),
                               headers={"X-Forwarded-For": NEIGHBOUR})
            again = proxy.post("/login", data=sign_in("carol", PASSWORD),
                               headers={"X-Forwarded-For": GUESSER})
            direct = httpx.post(f"{auth_url}/auth/login",
                                json={"username": "carol", "password": PASSWORD})
    assert tries == [401] * 5
    assert carol.status_code == 303 and carol.headers["location"] == PLAYGROUND
    assert again.status_code == 429 and "too many failed logins" in again.text
    assert direct.status_code == 200  # the gateway's own address was never counted


def test_distributed_login_page_ignores_a_browsers_own_forwarded_for(
        make_app, redis_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with served_auth(tmp_path, redis_url) as auth_url:
        gateway = make_app([say("ok")], auth_enabled=True, auth_url=auth_url)
        with (serve_in_thread(gateway, proxy_headers=False) as url,
              httpx.Client(base_url=url) as browser):
            tries = [browser.post("/login", data=sign_in(f"mallory{i}", "wrong guess"),
                                  headers={"X-Forwarded-For": f"192.0.2.{i}"}).status_code
                     for i in range(5)]
            again = browser.post("/login", data=sign_in("carol", PASSWORD),
                                 headers={"X-Forwarded-For": "192.0.2.99"})
    assert tries == [401] * 5
    assert again.status_code == 429 and "too many failed logins" in again.text
