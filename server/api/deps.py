"""FastAPI dependencies of every route, as `Annotated` aliases: the settings, the metrics,
the stores, the runner, the caller. This is the one module that reads the app's state;
routes take what they need as parameters."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
from fastapi import Depends, HTTPException, Request, status

from server import caller, logs
from server.admission import Overloaded, TurnSlot, TurnSlots
from server.agent_protocol.service import AgentProtocol, Live
from server.gateway import Services
from server.live import LiveRuns
from server.metrics import Metrics
from server.platform import Platform
from server.ratelimit import LimitUnknown, RateLimiter
from server.runner import Runner
from server.runner.failures import STORE_RETRY_AFTER
from server.settings import Settings
from services.tokens import InvalidToken, Principal, TokenVerifier, is_api_key, presented_token

log = logging.getLogger(__name__)

# Seconds a client waits before trying again while the auth service's keys cannot be
# fetched: about what a restarting auth service takes, and each try fetches anew.
KEYS_RETRY_AFTER = 5
LOCAL_USER = Principal(user_id="local", username="local", roles=("user", "admin"))


# Dependencies are `async def`: FastAPI runs plain `def` ones in a thread pool, a hop that
# costs more per request than the work they do.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_metrics(request: Request) -> Metrics:
    return _metrics(request)


async def get_services(request: Request) -> Services:
    return _services(request)


# Each dependency reads the app's state itself rather than through another dependency:
# FastAPI solves every dependency's own dependencies again on each use, cached or not, so
# a chain costs a solve per link on every request of every route that names it.
def _platform(request: Request) -> Platform | None:
    platform: Platform | None = getattr(request.app.state, "platform", None)
    return platform


async def find_platform(request: Request) -> Platform | None:
    """The platform, or None while the server starts (for health and metrics)."""
    return _platform(request)


def _started(request: Request) -> Platform:
    """The platform, or 503 while the server starts: the runner, live runs and the Agent
    Protocol are there once it is."""
    platform = _platform(request)
    if platform is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the server is starting",
                            headers={"Retry-After": "2"})
    return platform


async def get_platform(request: Request) -> Platform:
    """Also called directly by code outside FastAPI's dependencies (MCP tools, the
    LangServe routes' per-call config): it needs only the request."""
    return _started(request)


async def get_runner(request: Request) -> Runner:
    _started(request)
    runner: Runner = request.app.state.runner
    return runner


def _live_parts(request: Request) -> Live:
    """Live runs and the Agent Protocol's parts, once the platform is up."""
    _started(request)
    live: Live = request.app.state.live
    return live


async def get_live(request: Request) -> LiveRuns:
    return _live_parts(request).runs


async def get_protocol(request: Request) -> AgentProtocol:
    protocol = _live_parts(request).protocol
    if protocol is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "the Agent Protocol keeps threads and runs in Redis: set "
                            "PARLEY_REDIS_URL (`parley serve` starts one itself)")
    return protocol


async def find_protocol(request: Request) -> AgentProtocol | None:
    """The Agent Protocol's parts, or None without Redis (for the chat APIs, whose threads
    it lists when it can)."""
    return _live_parts(request).protocol


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ServicesDep = Annotated[Services, Depends(get_services)]
PlatformDep = Annotated[Platform, Depends(get_platform)]
MaybePlatform = Annotated[Platform | None, Depends(find_platform)]
RunnerDep = Annotated[Runner, Depends(get_runner)]
LiveDep = Annotated[LiveRuns, Depends(get_live)]
ProtocolDep = Annotated[AgentProtocol, Depends(get_protocol)]
MaybeProtocol = Annotated[AgentProtocol | None, Depends(find_protocol)]


def get_current_user(request: Request) -> Principal:
    """The caller, from a verified access token (header or the login page's cookie).
    With no verifier configured (auth off) every caller is the one local user."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:  # already verified for this request
        return known
    verifier: TokenVerifier | None = _services(request).verifier
    if verifier is None:
        return LOCAL_USER
    token = _token(request)
    if not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing access token: send 'Authorization: Bearer <token>' from /auth/login, "
            "or a personal API key (POST /auth/api-keys) as 'x-api-key'",
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
        raise _auth_unreachable("the access token") from exc
    request.state.principal = principal
    request.state.access_token = token
    return principal


def _token(request: Request) -> str | None:
    """The access token to verify: the one presented, or the one an API key was
    exchanged for (`current_user`)."""
    exchanged: str | None = getattr(request.state, "exchanged_token", None)
    return exchanged or presented_token(request.headers, request.cookies)


async def _exchange_api_key(request: Request, key: str) -> None:
    services = _services(request)
    try:
        request.state.exchanged_token = await services.access_for_api_key(key)
    except InvalidToken as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"invalid API key: {exc.reason}",
                            headers={"WWW-Authenticate": "Bearer"}) from exc
    except httpx.HTTPError as exc:
        log.warning("cannot reach the auth service to check an API key: %r", exc)
        raise _auth_unreachable("the API key") from exc


def _auth_unreachable(what: str) -> HTTPException:
    """An outage to retry (503), not a refusal (401): the credential may be good."""
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        f"the auth service cannot be reached to check {what}: try again in "
        f"{KEYS_RETRY_AFTER} s", headers={"Retry-After": str(KEYS_RETRY_AFTER)})


async def current_user(request: Request) -> Principal:
    verifier: TokenVerifier | None = _services(request).verifier
    token = presented_token(request.headers, request.cookies)
    if verifier is not None and token and is_api_key(token):
        await _exchange_api_key(request, token)
        token = _token(request)
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


async def access_token(request: Request, _user: CurrentUser) -> str | None:
    """The caller's verified access token (None with auth off), to call a service as them."""
    token: str | None = getattr(request.state, "access_token", None)
    return token


AccessToken = Annotated[str | None, Depends(access_token)]


async def get_profile(request: Request, user: CurrentUser) -> dict[str, Any] | None:
    """The caller's profile from the auth service, for the agents to follow (asked with
    their verified token, which `CurrentUser` left in the request's state)."""
    token: str | None = getattr(request.state, "access_token", None)
    profile: dict[str, Any] | None = await _services(request).profile(user, token)
    return profile


Profile = Annotated[dict[str, Any] | None, Depends(get_profile)]


async def enforce_rate_limit(request: Request, user: CurrentUser) -> None:
    """For chat routes: 429 with Retry-After when the caller is over the limit. The caller
    comes from `CurrentUser`, which FastAPI resolves once per request and shares with the
    route: the token's signature is checked once, not once per dependency."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is None or limiter.rate <= 0 or request.method != "POST":  # off; pages free
        return
    if request.headers.get("last-event-id"):  # resuming a stream runs no new turn
        return
    # A LangServe batch runs a turn per input: it costs as many, or one request could
    # run any number of turns under a per-request limit.
    cost = await _batch_size(request) if request.url.path.endswith("/batch") else 1
    if cost > limiter.burst:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            f"a batch of {cost} inputs is more than the {limiter.burst} turns "
                            f"the rate limit allows at once: send at most {limiter.burst}")
    try:
        wait = await limiter.wait_for(user.user_id, cost)
    except LimitUnknown as exc:
        log.warning("refusing a chat request: the rate limit cannot be checked (%s)", exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the conversation store is unavailable: try again in {STORE_RETRY_AFTER} s",
            headers={"Retry-After": str(STORE_RETRY_AFTER)}) from exc
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            f"rate limit reached: try again in {seconds} s",
                            headers={"Retry-After": str(seconds)})


async def _batch_size(request: Request) -> int:
    """The number of inputs of a LangServe batch body (read once: Starlette keeps it for
    the route); 1 when it is not one, which LangServe then refuses with its own 422."""
    try:
        inputs = (await request.json()).get("inputs")
    except (ValueError, AttributeError):
        return 1
    return max(1, len(inputs)) if isinstance(inputs, list) else 1


RateLimited = Depends(enforce_rate_limit)


@asynccontextmanager
async def turn_admitted(request: Request, cost: int = 1) -> AsyncIterator[TurnSlot]:
    """`cost` turn slots while the block runs, or 503 with Retry-After once none frees up
    in time (for faces that run turns inside a request of their own, as `/mcp` does)."""
    slots: TurnSlots = request.app.state.turn_slots
    metrics = _metrics(request)
    try:
        slot = await slots.acquire(cost)
    except Overloaded as exc:
        metrics.turns_refused.labels("overload").inc()
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the server is running its limit of {exc.limit} turns at once: try again in "
            f"{exc.retry_after} s", headers={"Retry-After": str(exc.retry_after)}) from exc
    metrics.turns_in_progress.inc(cost)
    try:
        yield slot
    finally:
        metrics.turns_in_progress.dec(cost)
        await slot.release()


async def admit_turn(request: Request, _user: CurrentUser
                     ) -> AsyncIterator[TurnSlot | None]:
    """A turn slot for this request's whole response (a LangServe batch takes one per
    input), or 503 with Retry-After once none frees up in time. After auth and the rate
    limit, so neither strangers nor a user over their limit take slots. Pages and schemas
    (GET) run no turn and take none."""
    if request.method != "POST":
        yield None
        return
    cost = await _batch_size(request) if request.url.path.endswith("/batch") else 1
    async with turn_admitted(request, cost) as slot:
        yield slot


Admitted = Depends(admit_turn)
