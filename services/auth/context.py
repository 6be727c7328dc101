"""Everything the auth routes need, built once from the settings (nothing at import)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
from redis.asyncio import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.auth import db
from services.auth.keys import KeyStore
from services.auth.ratelimit import LoginLimiter, MemoryLimiter, RedisLimiter
from services.auth.security import dummy_hash
from services.auth.settings import AuthSettings
from services.tokens import TokenVerifier

MIGRATIONS = db.MIGRATIONS


@dataclass
class AuthContext:
    settings: AuthSettings
    engine: Engine
    sessions: sessionmaker[Session]  # reads
    write_sessions: sessionmaker[Session]  # a unit of work that writes, in a `with` block
    keys: KeyStore
    limiter: LoginLimiter
    verifier: TokenVerifier
    owned_redis: Redis | None = None  # made here from `redis_url`, so closed here
    # Called with a user's id when their profile changes (a gateway's cache drops it).
    on_profile_change: list[Callable[[str], None]] = field(default_factory=list)
    # Called with a key's SHA-256 when it is revoked (a gateway's cache drops it at once).
    on_api_key_revoked: list[Callable[[str], None]] = field(default_factory=list)
    # Password hashes computed at once: argon2 is slow on purpose, and a burst of logins
    # running one thread each would starve every other thread (those holding a database
    # lock among them) of the cores. The rest wait their turn on the event loop.
    hashing: anyio.CapacityLimiter = field(
        default_factory=lambda: anyio.CapacityLimiter(max(1, os.cpu_count() or 1)))

    def start(self) -> None:
        """Migrate the schema, make sure a signing key exists, and pay the dummy hash's
        cost now rather than on the first login of an unknown user."""
        db.upgrade_database(self.settings.database_url)
        self.keys.current()
        dummy_hash()

    def close(self) -> None:
        self.engine.dispose()

    async def aclose(self) -> None:
        if self.owned_redis is not None:
            await self.owned_redis.aclose()
        self.close()


def build_auth(settings: AuthSettings, *, redis: Redis | None = None) -> AuthContext:
    """The context for `settings`; login limits go to `redis` when given, else to a client
    made from `settings.redis_url`, else stay in this process."""
    engine = db.make_engine(settings.database_url)
    keys = KeyStore(settings.keys_dir)
    owned = None
    if redis is None and settings.redis_url:
        redis = owned = Redis.from_url(settings.redis_url)
    limiter: LoginLimiter
    if redis is not None:
        limiter = RedisLimiter(redis, settings.login_max_failures, settings.login_window_seconds)
    else:
        limiter = MemoryLimiter(settings.login_max_failures, settings.login_window_seconds)
    verifier = TokenVerifier(jwks=keys.jwks, issuer=settings.issuer, audience=settings.audience)
    return AuthContext(settings=settings, engine=engine, sessions=db.make_sessions(engine),
                       write_sessions=db.make_write_sessions(engine),
                       keys=keys, limiter=limiter, verifier=verifier, owned_redis=owned)
