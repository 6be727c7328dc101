"""Unit-length float32 vectors from any LangChain `Embeddings`, for cosine search."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def unit_vectors(embeddings: Any, texts: Sequence[str]) -> np.ndarray:
    """Rows of unit length (inner product = cosine). Uses `embed_array` when the embedder
    has one (ours do, and skip a round trip through Python lists)."""
    if hasattr(embeddings, "embed_array"):
        vectors = np.asarray(embeddings.embed_array(list(texts)), dtype=np.float32)
    else:
        vectors = np.asarray(embeddings.embed_documents(list(texts)), dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(texts):
        raise ValueError(f"the embedder returned {vectors.shape} for {len(texts)} texts")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: np.ndarray = vectors / np.maximum(norms, 1e-12)
    return unit
