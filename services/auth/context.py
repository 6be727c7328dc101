"""Everything the auth routes need, built once from the settings (nothing at import)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from services.auth.keys import KeyStore
from services.auth.ratelimit import LoginLimiter, MemoryLimiter, RedisLimiter
from services.auth.settings import AuthSettings
from services.database import make_engine, make_sessions, upgrade_database
from services.tokens import TokenVerifier

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class AuthContext:
    settings: AuthSettings
    engine: Engine
    sessions: sessionmaker  # type: ignore[type-arg]
    keys: KeyStore
    limiter: LoginLimiter
    verifier: TokenVerifier

    def start(self) -> None:
        """Migrate the schema and make sure a signing key exists."""
        upgrade_database(self.settings.database_url, MIGRATIONS)
        self.keys.current()

    def close(self) -> None:
        self.engine.dispose()


def build_auth(settings: AuthSettings) -> AuthContext:
    engine = make_engine(settings.database_url)
    keys = KeyStore(settings.keys_dir)
    limiter: LoginLimiter
    if settings.redis_url:
        limiter = RedisLimiter(redis.Redis.from_url(settings.redis_url),
                               settings.login_max_failures, settings.login_window_seconds)
    else:
        limiter = MemoryLimiter(settings.login_max_failures, settings.login_window_seconds)
    verifier = TokenVerifier(jwks=keys.jwks, issuer=settings.issuer, audience=settings.audience)
    return AuthContext(settings=settings, engine=engine, sessions=make_sessions(engine),
                       keys=keys, limiter=limiter, verifier=verifier)
