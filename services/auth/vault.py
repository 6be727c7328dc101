"""Encryption of the credentials users store for MCP servers: AES-256-GCM with the user's
id and the server's name as associated data, so a row copied to another user or server
does not decrypt. The key is `PARLEY_AUTH_CREDENTIALS_KEY` (32 bytes, URL-safe base64), or
else one made once in the keys folder beside the signing keys (mode 0600)."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "mcp-credentials.key"
NONCE_BYTES = 12


class VaultError(ValueError):
    """A stored credential that does not decrypt (another key, or tampered with)."""


def _aad(user_id: int | str, server: str) -> bytes:
    return f"parley-mcp-credential:{user_id}:{server}".encode()


@dataclass(frozen=True)
class Vault:
    key: bytes

    def seal(self, user_id: int | str, server: str, secret: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.key).encrypt(nonce, secret.encode(), _aad(user_id, server))
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, user_id: int | str, server: str, ciphertext: str) -> str:
        raw = base64.urlsafe_b64decode(ciphertext.encode())
        try:
            plain = AESGCM(self.key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                             _aad(user_id, server))
        except InvalidTag as exc:
            raise VaultError("the stored credential does not decrypt with this key") from exc
        return plain.decode()


def decode_key(text: str) -> bytes:
    key = base64.urlsafe_b64decode(text.strip().encode() + b"==")
    if len(key) != 32:
        raise ValueError("PARLEY_AUTH_CREDENTIALS_KEY must be 32 bytes in URL-safe base64 "
                         "(python -c 'import os,base64; "
                         "print(base64.urlsafe_b64encode(os.urandom(32)).decode())')")
    return key


def load_vault(key_text: str | None, keys_dir: Path) -> Vault:
    """The vault of the configured key, else of the key file (made on first use)."""
    if key_text:
        return Vault(decode_key(key_text))
    path = keys_dir / KEY_FILE
    if not path.exists():
        keys_dir.mkdir(parents=True, exist_ok=True)
        fresh = base64.urlsafe_b64encode(os.urandom(32)).decode()
        try:  # O_EXCL: two replicas starting at once keep the first one's key
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(fresh)
    return Vault(decode_key(path.read_text()))
