"""MiniLM in int8 (the server's default): close to the float vectors, yet another model."""

from __future__ import annotations

import numpy as np

from memory.embeddings import LocalEmbeddings

TEXTS = ["My sister Alice lives in Lyon.", "where does my sister live?",
         "I am allergic to peanuts.", "what food should I avoid?"]


def test_int8_vectors_are_close_to_float_but_named_apart(
        embeddings: LocalEmbeddings) -> None:
    int8 = LocalEmbeddings(precision="int8")
    close = np.sum(int8.embed_array(TEXTS) * embeddings.embed_array(TEXTS), axis=1)
    assert close.min() > 0.9
    assert int8.model_id != embeddings.model_id  # so stored vectors are re-embedded
    # It still tells the related from the unrelated, as the float model does.
    v = int8.embed_array(TEXTS)
    assert v[1] @ v[0] > v[1] @ v[2] + 0.2 and v[3] @ v[2] > v[3] @ v[0]
    again = LocalEmbeddings(precision="int8")  # the quantized graph is read back
    assert np.allclose(again.embed_array(TEXTS), v, atol=1e-5)
    # Activations are quantized per run, so a text's vector depends a little on what it
    # was batched with: close, not equal.
    assert float(again.embed_array(TEXTS[:1])[0] @ v[0]) > 0.97
