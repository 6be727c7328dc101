"""Passwords (argon2id), access tokens (EdDSA JWTs) and refresh tokens (opaque, hashed)."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from services.auth.keys import KeyStore

_hasher = PasswordHash((Argon2Hasher(),))
# Verified against when the username is unknown, so both paths cost the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password-but-the-same-cost")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        _hasher.verify(password, _DUMMY_HASH)
        return False
    return _hasher.verify(password, password_hash)


def issue_access_token(*, keys: KeyStore, user_id: int, username: str, roles: list[str],
                       issuer: str, audience: str, ttl: int) -> str:
    key = keys.current()
    now = int(time.time())
    claims = {"sub": str(user_id), "username": username, "roles": roles, "iat": now,
              "exp": now + ttl, "iss": issuer, "aud": audience, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, key.private, algorithm="EdDSA", headers={"kid": key.kid})


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
