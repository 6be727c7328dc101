"""Ed25519 signing keys on disk, each with a `kid`; the JWKS publishes their public halves.

Rotation adds a key and signs with it from then on; older keys stay in the JWKS (and so
keep verifying the tokens they signed) until `retire` drops those older than a token's life.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey
    created: float

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(OKPAlgorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "alg": "EdDSA", "use": "sig"}


def _kid(private: Ed25519PrivateKey) -> str:
    raw = private.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest()[:12]).decode().rstrip("=")


class KeyStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def keys(self) -> list[SigningKey]:
        """Every key on disk, newest last."""
        found = []
        for path in sorted(self.directory.glob("*.pem")):
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if isinstance(private, Ed25519PrivateKey):
                found.append(SigningKey(_kid(private), private, path.stat().st_mtime))
        return sorted(found, key=lambda k: k.created)

    def current(self) -> SigningKey:
        keys = self.keys()
        return keys[-1] if keys else self.rotate()

    def rotate(self) -> SigningKey:
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{time.time_ns()}-{_kid(private)}.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        return SigningKey(_kid(private), private, path.stat().st_mtime)

    def retire(self, older_than_seconds: float) -> int:
        """Delete keys replaced more than `older_than_seconds` ago (never the current)."""
        keys = self.keys()
        removed = 0
        for older, newer in itertools.pairwise(keys):
            if time.time() - newer.created > older_than_seconds:
                for path in self.directory.glob(f"*-{older.kid}.pem"):
                    path.unlink()
                    removed += 1
        return removed

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.keys()]}
