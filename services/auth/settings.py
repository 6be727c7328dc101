"""The auth service's settings: read from `PARLEY_AUTH_*` when it runs on its own, built by
the gateway from its own settings when it is mounted in the one embedded process. Always
passed in: nothing below reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARLEY_AUTH_", extra="ignore")

    database_url: str = "sqlite:///data/auth.db"
    keys_dir: Path = Path("data/keys")
    issuer: str = "parley-auth"
    audience: str = "parley"
    access_ttl_seconds: int = Field(default=900, ge=30)
    refresh_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    # `PARLEY_AUTH_ADMIN_USERNAMES=ada,grace`: these accounts get the "admin" role.
    admin_usernames: Annotated[list[str], NoDecode] = Field(default_factory=list)
    login_max_failures: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=300, ge=1)
    redis_url: str | None = None  # login rate limits shared across replicas when set

    @field_validator("admin_usernames", mode="before")
    @classmethod
    def _usernames(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple | set):
            return [str(name).strip().lower() for name in value if str(name).strip()]
        return value
