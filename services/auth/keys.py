"""Ed25519 signing keys on disk, each with a `kid`; the JWKS publishes their public halves.

Rotation adds a key and signs with it from then on; older keys stay in the JWKS (and so
keep verifying the tokens they signed) until `retire` drops those replaced longer ago than a
token lives. Several replicas may share the directory: each call looks at what is on disk.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

# Verifiers accept tokens a little past `exp`: keep keys that much longer.
CLOCK_SKEW_SECONDS = 60


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey
    created: float  # seconds since the epoch: when it started signing

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(OKPAlgorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "alg": "EdDSA", "use": "sig"}


def _kid(private: Ed25519PrivateKey) -> str:
    raw = private.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest()[:12]).decode().rstrip("=")


def _created(path: Path) -> float:
    # The file name starts with its creation time in ns: mtimes change when a key folder is
    # copied or restored, and the order decides which key signs.
    stamp = path.name.split("-", 1)[0]
    return int(stamp) / 1e9 if stamp.isdigit() else path.stat().st_mtime


@dataclass
class KeyStore:
    directory: Path
    _loaded: dict[Path, SigningKey] = field(default_factory=dict, repr=False)
    _jwks: tuple[tuple[str, ...], dict[str, Any]] | None = field(default=None, repr=False)
    _listed: tuple[int, list[SigningKey]] | None = field(default=None, repr=False)

    def signing_keys(self) -> list[SigningKey]:
        """Every key on disk, oldest first (PEM files are parsed once). Verifying a token
        asks for them, so the folder is listed again only when its mtime says a key was
        added or removed (by this process or by `rotate_keys` in another)."""
        try:
            stamp = self.directory.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = -1
        if self._listed is not None and self._listed[0] == stamp:
            return list(self._listed[1])
        paths = set(self.directory.glob("*.pem")) if self.directory.is_dir() else set()
        for gone in self._loaded.keys() - paths:
            del self._loaded[gone]
        for path in paths - self._loaded.keys():
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if isinstance(private, Ed25519PrivateKey):
                self._loaded[path] = SigningKey(_kid(private), private, _created(path))
        keys = sorted(self._loaded.values(), key=lambda k: (k.created, k.kid))
        self._listed = (stamp, keys)
        return list(keys)

    def current(self) -> SigningKey:
        """The newest key; the first call on an empty directory makes one."""
        keys = self.signing_keys()
        return keys[-1] if keys else self.rotate()

    def rotate(self) -> SigningKey:
        """Make a new key; it signs from now on."""
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.directory / f"{time.time_ns()}-{_kid(private)}.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        key = SigningKey(_kid(private), private, _created(path))
        self._loaded[path] = key
        return key

    def retire(self, older_than_seconds: float) -> int:
        """Delete keys replaced more than `older_than_seconds` ago (never the current one):
        every token they signed has expired by then."""
        removed = 0
        for older, newer in itertools.pairwise(self.signing_keys()):
            if time.time() - newer.created > older_than_seconds:
                for path in self.directory.glob(f"*-{older.kid}.pem"):
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    def jwks(self) -> dict[str, Any]:
        """The public JWK set; the same object while the keys do not change, so verifiers
        can tell cheaply that they need not re-parse it."""
        keys = self.signing_keys()
        kids = tuple(key.kid for key in keys)
        if self._jwks is None or self._jwks[0] != kids:
            self._jwks = (kids, {"keys": [key.public_jwk() for key in keys]})
        return self._jwks[1]


def rotate_keys(directory: Path, *, token_ttl_seconds: float) -> SigningKey:
    """Start signing with a new key, and drop keys whose tokens have all expired. Run it on a
    schedule (or by hand after a leak: then also retire with `older_than_seconds=0`)."""
    store = KeyStore(directory)
    store.retire(older_than_seconds=token_ttl_seconds + CLOCK_SKEW_SECONDS)
    return store.rotate()


def main(argv: list[str] | None = None) -> None:
    """`python -m services.auth.keys --dir data/keys --ttl 900`"""
    parser = argparse.ArgumentParser(description="Rotate the auth service's signing keys.")
    parser.add_argument("--dir", type=Path, required=True, help="the keys directory")
    parser.add_argument("--ttl", type=float, default=900,
                        help="access-token lifetime in seconds (keys older are retired)")
    args = parser.parse_args(argv)
    key = rotate_keys(args.dir, token_ttl_seconds=args.ttl)
    print(f"signing with {key.kid}; keys: {[k.kid for k in KeyStore(args.dir).signing_keys()]}")


if __name__ == "__main__":  # pragma: no cover
    main()
