"""What the auth API takes and gives."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.timestamps import UtcDateTime

USERNAME = re.compile(r"[A-Za-z0-9_.-]{3,32}")
# A language name or tag, in any script: "French", "pt-BR", "zh-Hant", "Français".
LANGUAGE = re.compile(r"[^\W\d_](?:[^\W\d_]|[ -])+")
MIN_PASSWORD = 10


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class Registration(Credentials):
    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        if not USERNAME.fullmatch(value):
            raise ValueError("username must be 3-32 letters, digits, '_', '.' or '-'")
        return value.lower()

    @model_validator(mode="after")
    def _policy(self) -> Registration:
        password = self.password
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"password must be at least {MIN_PASSWORD} characters long")
        if password.isdigit():
            raise ValueError("password must not be only digits")
        if password.lower() == self.username.lower():
            raise ValueError("password must not be the username")
        return self


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds the access token stays valid")


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=10, max_length=200)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str | None
    preferred_language: str | None
    custom_instructions: str | None
    roles: list[str] = ["user"]
    created_at: UtcDateTime


class ProfileUpdate(BaseModel):
    """Only the fields sent change; `null` clears one. The agents read these."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    display_name: str | None = Field(default=None, max_length=80)
    preferred_language: str | None = Field(default=None, max_length=35)
    custom_instructions: str | None = Field(default=None, max_length=2000)

    @field_validator("preferred_language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is not None and not LANGUAGE.fullmatch(value):
            raise ValueError("preferred_language must be a language name or tag, "
                             "such as 'French' or 'pt-BR'")
        return value


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=80, description="What the key is for.")
    expires_in_days: int | None = Field(default=None, ge=1, le=3650,
                                        description="Omit for a key that does not expire.")


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str = Field(description="The key's first characters, to tell keys apart.")
    created_at: UtcDateTime
    expires_at: UtcDateTime | None
    last_used_at: UtcDateTime | None
    revoked_at: UtcDateTime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself: shown this once, never stored.")


class AccessToken(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds the access token stays valid")


MCP_SERVER = re.compile(r"[A-Za-z0-9_-]{1,64}")


class McpCredentialIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credential: str = Field(min_length=1, max_length=8192,
                            description="Your token or API key for this MCP server.")

    @field_validator("credential")
    @classmethod
    def _one_line(cls, value: str) -> str:
        value = value.strip()
        if not value or any(c in value for c in "\r\n\x00"):
            raise ValueError("credential must be one non-empty line (it is sent as a header)")
        return value


class McpCredentialOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    server: str
    created_at: UtcDateTime
    updated_at: UtcDateTime


class McpCredentialSecret(BaseModel):
    server: str
    user_id: str  # whose it is: the reader checks it is the user it calls for
    credential: str
