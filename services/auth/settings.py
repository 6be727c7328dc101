"""The auth service's settings: read from `PARLEY_AUTH_*` when it runs on its own, built by
the gateway from its own settings when it is mounted in the one embedded process."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARLEY_AUTH_", extra="ignore")

    database_url: str = "sqlite:///data/auth.db"
    keys_dir: Path = Path("data/keys")
    issuer: str = "parley-auth"
    audience: str = "parley"
    access_ttl_seconds: int = Field(default=900, ge=30)
    refresh_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    admin_usernames: list[str] = Field(default_factory=list)
    login_max_failures: int = 5
    login_window_seconds: int = 300
    redis_url: str | None = None  # login rate limits shared across replicas when set
    secure_cookies: bool = False
