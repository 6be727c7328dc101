"""Failed logins are limited per username and per client address, in Redis or in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from services.auth.app import create_app
from services.auth.context import build_auth
from services.auth.ratelimit import LoginLimiter, MemoryLimiter, RedisLimiter
from services.auth.settings import AuthSettings
from tests.services.auth.support import PASSWORD, connect, open_service, register, running


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest) -> LoginLimiter:
    if request.param == "memory":
        return MemoryLimiter(max_failures=3, window=60)
    return RedisLimiter(request.getfixturevalue("redis_client"), max_failures=3, window=60)


async def test_limiter_backends(limiter: LoginLimiter) -> None:
    assert await limiter.retry_after(["user:ada"]) == 0
    for _ in range(2):
        await limiter.record_failure(["user:ada", "ip:10.0.0.7"])
    assert await limiter.retry_after(["user:ada", "ip:10.0.0.7"]) == 0
    await limiter.record_failure(["user:ada", "ip:10.0.0.7"])
    wait = await limiter.retry_after(["user:ada", "ip:10.0.0.9"])
    assert 0 < wait <= 60
    assert await limiter.retry_after(["user:grace", "ip:10.0.0.9"]) == 0
    assert 0 < await limiter.retry_after(["user:grace", "ip:10.0.0.7"]) <= 60
    await limiter.reset(["user:ada"])
    assert await limiter.retry_after(["user:ada"]) == 0
    assert await limiter.retry_after(["ip:10.0.0.7"]) > 0


async def test_failed_logins_get_429_with_retry_after(auth_settings: AuthSettings,
                                                      redis_url: str) -> None:
    app = create_app(auth_settings.model_copy(update={"redis_url": redis_url}))
    async with running(app) as client:
        assert isinstance(app.state.auth.limiter, RedisLimiter)
        await register(client, "ada")
        for _ in range(3):
            bad = await client.post("/auth/login", json={"username": "ada", "password": "x"})
            assert bad.status_code == 401
        # Even the right password is refused until the window passes.
        limited = await client.post("/auth/login", data={"username": "ADA",
                                                         "password": PASSWORD})
        assert limited.status_code == 429
        assert 0 < int(limited.headers["Retry-After"]) <= 60
        assert f"try again in {limited.headers['Retry-After']} s" in limited.json()["detail"]
        # Another account from another address is not affected.
        async with connect(app, ("10.0.0.8", 1)) as elsewhere:
            await register(elsewhere, "grace")
            ok = await elsewhere.post("/auth/login", json={"username": "grace",
                                                           "password": PASSWORD})
            assert ok.status_code == 200
    # The count lives in Redis: another replica of the service sees the same limit.
    async with open_service(auth_settings, redis_url=redis_url) as (other, _ctx):
        again = await other.post("/auth/login", json={"username": "ada", "password": PASSWORD})
    assert again.status_code == 429


async def test_one_address_guessing_many_usernames_is_limited(
        auth_settings: AuthSettings) -> None:
    app = create_app(auth_settings)
    async with running(app) as client:
        assert isinstance(app.state.auth.limiter, MemoryLimiter)
        await register(client, "ada")
        for name in ("bob", "carol", "dave"):
            bad = await client.post("/auth/login", json={"username": name, "password": "x"})
            assert bad.status_code == 401
        limited = await client.post("/auth/login", json={"username": "ada",
                                                         "password": PASSWORD})
        assert limited.status_code == 429 and "Retry-After" in limited.headers
        async with connect(app, ("10.0.0.99", 1)) as other:
            assert (await other.post("/auth/login", json={
                "username": "ada", "password": PASSWORD})).status_code == 200


async def test_a_successful_login_clears_the_username_count(auth_settings: AuthSettings,
                                                            redis_client: Redis) -> None:
    ctx = build_auth(auth_settings, redis=redis_client)  # a client handed in is used
    app = create_app(auth_settings, ctx)
    attempts = 0

    async def attempt(password: str, address: str) -> int:
        nonlocal attempts
        attempts += 1
        async with connect(app, (address, attempts)) as client:
            response = await client.post("/auth/login", json={"username": "ada",
                                                              "password": password})
        return response.status_code

    async with running(app) as client:
        await register(client, "ada")
        assert [await attempt("x", "10.1.0.1"), await attempt("x", "10.1.0.2")] == [401, 401]
        assert await attempt(PASSWORD, "10.1.0.3") == 200
        assert [await attempt("x", "10.1.0.4"), await attempt("x", "10.1.0.5")] == [401, 401]
        assert await attempt(PASSWORD, "10.1.0.6") == 200  # 4 failures, never 3 in a row
        assert await redis_client.exists("parley:auth:login-failures:user:ada") == 0
    assert await redis_client.ping()  # a client handed in is not closed by the service
