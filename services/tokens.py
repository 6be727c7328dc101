"""The access-token format shared by the services: verify with public keys only.

The auth service signs access tokens (EdDSA, with a `kid`); every other service verifies
them against the auth service's JWKS, so nothing but the public key leaves the auth
service. This module is that shared format, and nothing else of the auth service.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from jwt import PyJWK

ALGORITHMS = ["EdDSA"]


class InvalidToken(Exception):
    """The token cannot be trusted; `reason` says why (safe to show to the caller)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    user_id: str
    username: str
    roles: tuple[str, ...] = ("user",)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


JwksSource = Callable[[], Mapping[str, Any]]


def static_jwks(jwks: Mapping[str, Any]) -> JwksSource:
    return lambda: jwks


def url_jwks(url: str, *, ttl: float = 300.0, timeout: float = 5.0) -> JwksSource:
    """Fetch the JWKS over HTTP and cache it for `ttl` seconds."""
    cache: dict[str, Any] = {"at": 0.0, "jwks": None}

    def fetch() -> Mapping[str, Any]:
        if cache["jwks"] is None or time.monotonic() - cache["at"] > ttl:
            response = httpx.get(url, timeout=timeout)
            response.raise_for_status()
            cache.update(at=time.monotonic(), jwks=response.json())
        return cache["jwks"]  # type: ignore[no-any-return]

    def refresh() -> None:
        cache["jwks"] = None

    fetch.refresh = refresh  # type: ignore[attr-defined]
    return fetch


@dataclass
class TokenVerifier:
    """Checks signature (public key by `kid`, EdDSA only), expiry, issuer and audience."""

    jwks: JwksSource
    issuer: str
    audience: str
    leeway: float = 5.0
    _keys: dict[str, PyJWK] = field(default_factory=dict, repr=False)

    def _key(self, kid: str) -> PyJWK:
        if kid not in self._keys:
            self._load_keys()
        if kid not in self._keys and hasattr(self.jwks, "refresh"):
            self.jwks.refresh()  # a rotated key the cached JWKS does not know yet
            self._load_keys()
        if kid not in self._keys:
            raise InvalidToken("token signed with an unknown key")
        return self._keys[kid]

    def _load_keys(self) -> None:
        for entry in self.jwks().get("keys", []):
            if "kid" in entry:
                self._keys[entry["kid"]] = PyJWK.from_json(json.dumps(entry))

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken(f"token algorithm {header.get('alg')!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("token has no key id")
        try:
            claims = jwt.decode(
                token, self._key(kid), algorithms=ALGORITHMS, audience=self.audience,
                issuer=self.issuer, leeway=self.leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token has expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"token rejected: {exc}") from exc
        return Principal(
            user_id=str(claims["sub"]),
            username=str(claims.get("username", "")),
            roles=tuple(claims.get("roles", ["user"])),
        )
