"""The auth service's settings: read from `PARLEY_AUTH_*` when it runs on its own, built by
the gateway from its own settings when it is mounted in the one embedded process. Always
passed in: nothing below reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.tokens import AUDIENCE, ISSUER

ADMIN_USERNAMES_GONE = (
    "admin roles are no longer given by username (anyone registering a listed name first "
    "became admin): unset it, and grant roles to existing accounts with `parley admin grant "
    "USERNAME` (or `python -m services.auth.admin grant USERNAME` where the auth service "
    "runs)")


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARLEY_AUTH_", extra="ignore")

    database_url: str = "sqlite:///data/auth.db"
    keys_dir: Path = Path("data/keys")
    issuer: str = ISSUER
    audience: str = AUDIENCE
    access_ttl_seconds: int = Field(default=900, ge=30)
    refresh_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    # Refused when set: see `_no_admin_usernames`.
    admin_usernames: Annotated[str | None, NoDecode] = None
    login_max_failures: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=300, ge=1)
    redis_url: str | None = None  # login rate limits shared across replicas when set
    # Users' credentials for MCP servers are encrypted with this key (32 bytes, URL-safe
    # base64); unset, a key file is made in keys_dir (services/auth/vault.py).
    credentials_key: SecretStr | None = None
    # A gateway that presents this (as `x-parley-service-key`) with a user's access token
    # may read that user's MCP credential (distributed shape). Unset: nobody can.
    service_key: SecretStr | None = None

    @field_validator("admin_usernames", mode="before")
    @classmethod
    def _no_admin_usernames(cls, value: Any) -> None:
        # Roles by username went to whoever registered a listed name first: a privilege
        # escalation. Refusing to start says so, where ignoring it would quietly drop the
        # operator's admins.
        if value:
            raise ValueError(ADMIN_USERNAMES_GONE)
        return None
