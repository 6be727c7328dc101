"""The shipped MiniLM, computed with numpy: real sentence embeddings, offline."""

from __future__ import annotations

import numpy as np

from memory.embeddings import LocalEmbeddings, default_model_dir, make_embeddings

FACTS = ["My sister Alice lives in Lyon.", "I am allergic to peanuts.",
         "My favourite colour is green.", "I work as a nurse at the city hospital.",
         "We have a dog called Rex.", "I drive a red Toyota."]
QUESTIONS = ["Where does my sister live?", "What food should I avoid?",
             "What colour do I like?", "What is my job?", "What pet do we have?",
             "What car do I have?"]


def test_the_model_ships_in_a_wheel() -> None:
    folder = default_model_dir()
    assert "site-packages" in str(folder) and (folder / "model.safetensors").is_file()


def test_each_question_finds_its_fact(embeddings: LocalEmbeddings) -> None:
    facts = embeddings.embed_array(FACTS)
    questions = embeddings.embed_array(QUESTIONS)
    assert facts.shape == (6, 384)
    assert np.allclose(np.linalg.norm(facts, axis=1), 1.0, atol=1e-5)
    scores = questions @ facts.T
    assert list(scores.argmax(axis=1)) == list(range(6))
    assert scores[0, 0] > 0.5 and scores[0, 2] < 0.2


def test_batches_and_padding_do_not_change_a_vector(embeddings: LocalEmbeddings) -> None:
    alone = embeddings.embed_array(["I drive a red Toyota."])[0]
    in_batch = embeddings.embed_array(["x", "I drive a red Toyota.", "a much longer sentence "
                                       "that makes the batch pad the shorter ones"])[1]
    assert np.allclose(alone, in_batch, atol=1e-4)


def test_langchain_interface_and_factory() -> None:
    model = make_embeddings("local")
    vector = model.embed_query("hello")
    assert len(vector) == 384 and isinstance(vector[0], float)
    try:
        make_embeddings("nope")
    except ValueError as exc:
        assert "unknown embeddings" in str(exc)
