"""FastAPI dependencies of the gateway: the platform, and who is calling."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

import httpx
from fastapi import Depends, HTTPException, Request, status

from server import caller, logs
from server.platform import Platform
from services.tokens import InvalidToken, Principal, TokenVerifier

log = logging.getLogger(__name__)

ACCESS_COOKIE = "parley_access"
# Seconds a client waits before trying again while the auth service's keys cannot be
# fetched: about what a restarting auth service takes, and each try fetches anew.
KEYS_RETRY_AFTER = 5
LOCAL_USER = Principal(user_id="local", username="local", roles=("user", "admin"))


async def get_platform(request: Request) -> Platform:
    platform: Platform | None = getattr(request.app.state, "platform", None)
    if platform is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the server is starting")
    return platform


# Dependencies are `async def`: FastAPI runs plain `def` ones in a thread pool, a hop that
# cost more per request than the work they do.
PlatformDep = Annotated[Platform, Depends(get_platform)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return request.cookies.get(ACCESS_COOKIE)


def get_current_user(request: Request) -> Principal:
    """The caller, from a verified access token (header or the playground's cookie).
    With no verifier configured (auth off) every caller is the one local user."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:  # already verified for this request
        return known
    verifier: TokenVerifier | None = getattr(request.app.state, "verifier", None)
    if verifier is None:
        return LOCAL_USER
    token = _bearer(request)
    if not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing access token: send 'Authorization: Bearer <token>' from /auth/login",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        principal = verifier.verify(token)
    except InvalidToken as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"invalid access token: {exc.reason}",
                            headers={"WWW-Authenticate": "Bearer"}) from exc
    except httpx.HTTPError as exc:
        # No keys were ever fetched and the auth service does not answer: the token may be
        # good, so this is an outage to retry (503), not a refusal (401).
        log.warning("cannot fetch the auth service's signing keys: %r", exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the auth service cannot be reached to check the access token: try again in "
            f"{KEYS_RETRY_AFTER} s", headers={"Retry-After": str(KEYS_RETRY_AFTER)}) from exc
    request.state.principal = principal
    request.state.access_token = token
    return principal


async def current_user(request: Request) -> Principal:
    verifier: TokenVerifier | None = getattr(request.app.state, "verifier", None)
    token = _bearer(request)
    if verifier is not None and token and verifier.would_fetch(token):
        # The auth service's keys must be fetched (at start, every few minutes, after a
        # rotation): over the network, so in a thread, not on the event loop.
        principal = await asyncio.to_thread(get_current_user, request)
    else:
        principal = get_current_user(request)
    logs.user_id.set(principal.user_id)  # the request's log lines name who made it
    # Services called on the user's behalf during the turn (history) are called as them.
    caller.access_token.set(getattr(request.state, "access_token", None))
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]


async def get_profile(request: Request, user: CurrentUser) -> dict[str, Any] | None:
    """The caller's profile from the auth service, for the agents to follow."""
    services = getattr(request.app.state, "services", None)
    if services is None:
        return None
    profile: dict[str, Any] | None = await services.profile(
        request.app, user, getattr(request.state, "access_token", None))
    return profile


Profile = Annotated[dict[str, Any] | None, Depends(get_profile)]
