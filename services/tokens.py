"""The access-token format shared by the services: verify with public keys only.

The auth service signs access tokens (EdDSA, with a `kid`); every other service verifies
them against the auth service's JWKS, so nothing but the public key leaves the auth
service. This module is that shared format, and nothing else of the auth service.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from jwt import PyJWK

ALGORITHMS = ["EdDSA"]
# Who signs access tokens and for whom: the auth service and the services that verify.
ISSUER = "parley-auth"
AUDIENCE = "parley"
# The cookie a browser signed in through the login page carries the access token in.
ACCESS_COOKIE = "parley_access"
# Personal API keys start so: told apart from access tokens (JWTs) at a glance, and
# found by secret scanners.
API_KEY_PREFIX = "prl_"


def presented_token(headers: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
    """The credential a request presents: `Authorization: Bearer`, else `x-api-key` (what
    LangGraph's SDKs send), else the login page's cookie. An access token or an API key."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    if key := headers.get("x-api-key", "").strip():
        return key
    return cookies.get(ACCESS_COOKIE) or None


def is_api_key(token: str) -> bool:
    return token.startswith(API_KEY_PREFIX)


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


def url_jwks(url: str, *, ttl: float = 300.0, timeout: float = 5.0,
             min_refresh_interval: float = 1.0) -> JwksSource:
    """Fetch the JWKS over HTTP and cache it for `ttl` seconds.

    A token with an unknown `kid` asks for a refetch (`refresh`), but at most once per
    `min_refresh_interval`: forged kids must not turn every request into a download, yet a
    freshly rotated key is trusted within a second. While the auth service is unreachable the
    last good set keeps serving; with no set yet the fetch's httpx.HTTPError goes to the
    caller (through `TokenVerifier.verify`), which answers an outage, not a bad token.
    """
    cache: dict[str, Any] = {"at": float("-inf"), "jwks": None}

    def fetch() -> Mapping[str, Any]:
        if time.monotonic() - cache["at"] > ttl:
            try:
                response = httpx.get(url, timeout=timeout)
                response.raise_for_status()
                cache.update(at=time.monotonic(), jwks=response.json())
            except httpx.HTTPError:
                if cache["jwks"] is None:  # nothing to trust: the next request tries again
                    raise
                # try again after the refresh interval, not on every request
                cache["at"] = time.monotonic() - ttl + min_refresh_interval
        return cache["jwks"]  # type: ignore[no-any-return]

    def refresh() -> None:
        if can_refresh():
            cache["at"] = float("-inf")

    def can_refresh() -> bool:
        return time.monotonic() - cache["at"] >= min_refresh_interval

    def due() -> bool:
        return time.monotonic() - cache["at"] > ttl

    fetch.refresh = refresh  # type: ignore[attr-defined]
    fetch.can_refresh = can_refresh  # type: ignore[attr-defined]
    fetch.due = due  # type: ignore[attr-defined]
    return fetch


@dataclass
class TokenVerifier:
    """Checks signature (public key by `kid`, EdDSA only), expiry, issuer and audience."""

    jwks: JwksSource
    issuer: str
    audience: str
    leeway: float = 5.0
    cache_size: int = 4096
    _keys: dict[str, PyJWK] = field(default_factory=dict, repr=False)
    _parsed: Mapping[str, Any] | None = field(default=None, repr=False)
    # Tokens whose signature checked out: token -> (principal, exp, kid, the verifying key).
    # A client sends the same token for minutes; the EdDSA check is most of a request's
    # auth cost, and the same bytes verify the same way until they expire or the key goes.
    _verified: dict[str, tuple[Principal, float, str, PyJWK]] = field(default_factory=dict,
                                                                      repr=False)

    def _current_keys(self) -> dict[str, PyJWK]:
        # Re-parse whenever the source hands out a new set, so a key dropped from the JWKS
        # stops verifying here too (sources cache, so this is an identity check mostly).
        jwks = self.jwks()
        if jwks is not self._parsed:
            self._keys = _parse_jwks(jwks)
            self._parsed = jwks
        return self._keys

    def _key(self, kid: str) -> PyJWK:
        keys = self._current_keys()
        if kid not in keys and hasattr(self.jwks, "refresh"):
            self.jwks.refresh()  # a rotated key the cached JWKS does not know yet
            keys = self._current_keys()
        if kid not in keys:
            raise InvalidToken("token signed with an unknown key")
        return keys[kid]

    def would_fetch(self, token: str) -> bool:
        """Whether verifying `token` would download the JWKS: the cached set is stale, or
        the token names a key it lacks and a refetch is allowed. An async caller verifies
        such a token in a thread, so its event loop never waits on the network."""
        due = getattr(self.jwks, "due", None)
        if due is None:
            return False
        if due():
            return True
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            return False
        return kid not in self._current_keys() and bool(self.jwks.can_refresh())  # type: ignore[attr-defined]

    def verify(self, token: str) -> Principal:
        hit = self._verified.get(token)
        if hit is not None:
            principal, expires, kid, key = hit
            # Expiry is checked on every use; a key dropped from the JWKS (or the set
            # fetched anew) sends the token back through the full check.
            if time.time() < expires + self.leeway and self._current_keys().get(kid) is key:
                return principal
            self._verified.pop(token, None)
        principal, expires, kid, key = self._verify_signed(token)
        if len(self._verified) >= self.cache_size:
            now = time.time()
            for stale in [t for t, v in self._verified.items() if v[1] + self.leeway <= now]:
                self._verified.pop(stale, None)
            if len(self._verified) >= self.cache_size:
                self._verified.clear()
        self._verified[token] = (principal, expires, kid, key)
        return principal

    def _verify_signed(self, token: str) -> tuple[Principal, float, str, PyJWK]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken(f"token algorithm {header.get('alg')!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("token has no key id")
        key = self._key(kid)
        try:
            claims = jwt.decode(
                token, key, algorithms=ALGORITHMS, audience=self.audience,
                issuer=self.issuer, leeway=self.leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token has expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"token rejected: {exc}") from exc
        principal = Principal(
            user_id=str(claims["sub"]),
            username=str(claims.get("username", "")),
            roles=tuple(claims.get("roles", ["user"])),
        )
        return principal, float(claims["exp"]), kid, key


def _parse_jwks(jwks: Mapping[str, Any]) -> dict[str, PyJWK]:
    """The Ed25519 public keys of a JWKS by `kid`; anything else in the set is ignored."""
    keys: dict[str, PyJWK] = {}
    for entry in jwks.get("keys", []):
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519" or "d" in entry:
            continue
        try:
            keys[entry["kid"]] = PyJWK.from_dict(entry, algorithm="EdDSA")
        except jwt.PyJWTError:
            continue
    return keys
