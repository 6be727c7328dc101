"""Passwords (argon2id), access tokens (EdDSA JWTs) and refresh tokens (opaque, hashed)."""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
import uuid

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from services.auth.keys import KeyStore
from services.tokens import API_KEY_PREFIX

_hasher = PasswordHash((Argon2Hasher(),))


@functools.cache
def dummy_hash() -> str:
    """Verified against when the username is unknown, so both paths cost the same time.
    Made with the current parameters (not a constant) so the cost really is the same;
    computed on first use, not at import."""
    return _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """(matches, a new hash when the stored one uses outdated parameters)."""
    if password_hash is None:
        _hasher.verify(password, dummy_hash())
        return False, None
    return _hasher.verify_and_update(password, password_hash)


def issue_access_token(*, keys: KeyStore, user_id: int, username: str, roles: list[str],
                       issuer: str, audience: str, ttl: int) -> str:
    key = keys.current()
    now = int(time.time())
    claims = {"sub": str(user_id), "username": username, "roles": roles, "iat": now,
              "exp": now + ttl, "iss": issuer, "aud": audience, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, key.private, algorithm="EdDSA", headers={"kid": key.kid})


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
