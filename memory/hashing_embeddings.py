"""A deterministic bag-of-words embedder FOR TESTS OF STORE MECHANICS ONLY.

It knows no meaning: two texts are close only when they share words. It lets contract
tests exercise storage, isolation, top-k and thresholds quickly and predictably; anything
that checks retrieval quality uses the real model (`memory.embeddings.LocalEmbeddings`).
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
from langchain_core.embeddings import Embeddings

_WORD = re.compile(r"[a-z0-9]+")


class HashingTestEmbeddings(Embeddings):
    """Each lower-cased word adds +1 or -1 to one of `dim` slots chosen by its hash."""

    def __init__(self, dim: int = 64, salt: str = "") -> None:
        self.dim = dim
        # Another salt is another "model": the tests of re-embedding switch between two.
        self.salt = salt
        self.model_id = f"hashing-{dim}{'-' + salt if salt else ''}"

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dim, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b((self.salt + word).encode(), digest_size=8).digest()
            slot = int.from_bytes(digest[:4], "little") % self.dim
            vector[slot] += 1.0 if digest[4] & 1 else -1.0
        norm = float(np.linalg.norm(vector))
        # A text with no words still needs a valid unit vector for cosine engines.
        return vector / norm if norm else np.eye(1, self.dim, dtype=np.float32)[0]

    def embed_array(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts])

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]
