"""Access tokens in the shared format, signed by a key made for the test."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from services.tokens import AUDIENCE, ISSUER, TokenVerifier, static_jwks


@dataclass
class TokenFactory:
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    kid: str = "test-key"

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(OKPAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "alg": "EdDSA"}]}

    def verifier(self) -> TokenVerifier:
        return TokenVerifier(static_jwks(self.jwks()), ISSUER, AUDIENCE)

    def token(self, user_id: str, *, roles: tuple[str, ...] = ("user",), ttl: int = 600) -> str:
        now = int(time.time())
        claims = {"sub": user_id, "username": user_id, "roles": list(roles), "iat": now,
                  "exp": now + ttl, "iss": ISSUER, "aud": AUDIENCE, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": self.kid})

    def headers(self, user_id: str, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id, **kwargs)}"}
