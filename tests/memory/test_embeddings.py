"""The shipped MiniLM on ONNX Runtime: real sentence embeddings, offline."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from memory.embeddings import LocalEmbeddings, MiniLMEncoder, default_model_dir, make_embeddings
from tests.memory.numpy_minilm import NumpyMiniLM

FACTS = ["My sister Alice lives in Lyon.", "I am allergic to peanuts.",
         "My favourite colour is green.", "I work as a nurse at the city hospital.",
         "We have a dog called Rex.", "I drive a red Toyota."]
QUESTIONS = ["Where does my sister live?", "What food should I avoid?",
             "What colour do I like?", "What is my job?", "What pet do we have?",
             "What car do I have?"]


def test_the_model_ships_in_a_wheel() -> None:
    folder = default_model_dir()
    assert "site-packages" in str(folder) and (folder / "model.safetensors").is_file()


def test_the_onnx_graph_computes_what_the_numpy_forward_pass_does() -> None:
    """Vectors already stored were made by the numpy encoder: the graph must give the same
    ones, alone and in padded batches, for short, accented and truncated texts."""
    folder = default_model_dir()
    texts = ["where does my sister live?", "café naïve résumé ☕", "x", "",
             "word " * 400, FACTS[0]]
    reference = NumpyMiniLM(folder).encode(texts)
    onnx = MiniLMEncoder(folder)
    batched = onnx.encode(texts)
    alone = np.concatenate([onnx.encode([t]) for t in texts])
    for got in (batched, alone):
        assert got.shape == (6, 384) and got.dtype == np.float32
        cosines = (got * reference).sum(axis=1)
        assert cosines.min() > 0.9999, cosines
        assert np.abs(got - reference).max() < 1e-3


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


def count_runs(embeddings: LocalEmbeddings) -> tuple[list[list[str]], Any]:
    """The texts of each encoder run from now on, and the encoder's own `encode`."""
    encoder = embeddings.encoder()
    runs: list[list[str]] = []
    real = encoder.encode

    def counting(texts: list[str]) -> np.ndarray:
        runs.append(list(texts))
        return real(texts)

    encoder.encode = counting  # type: ignore[method-assign]
    return runs, real


def test_recent_texts_are_not_embedded_twice() -> None:
    embeddings = LocalEmbeddings(cache_size=2)
    runs, _real = count_runs(embeddings)
    first = embeddings.embed_array(["my sister lives in Lyon"])
    again = embeddings.embed_array(["my sister lives in Lyon", "I play the cello"])
    assert runs == [["my sister lives in Lyon"], ["I play the cello"]]
    assert np.array_equal(first[0], again[0])
    again[0] *= 2  # the caller's copy: the cache keeps the model's vector
    assert np.array_equal(embeddings.embed_array(["my sister lives in Lyon"])[0], first[0])
    embeddings.embed_array(["a third text", "a fourth text"])  # evicts the oldest
    embeddings.embed_array(["my sister lives in Lyon"])
    assert runs[-1] == ["my sister lives in Lyon"]


def test_concurrent_callers_share_one_encoder_run() -> None:
    embeddings = LocalEmbeddings(cache_size=0)
    runs, real = count_runs(embeddings)
    alone = {q: real([q])[0] for q in QUESTIONS}
    results: dict[str, np.ndarray] = {}

    def ask(question: str) -> None:
        results[question] = embeddings.embed_array([question, "shared by every caller"])[0]

    # While the encoder is busy (its lock held here), six callers queue their questions;
    # the first to get it next runs them all together.
    with embeddings._encoding:
        threads = [threading.Thread(target=ask, args=(q,)) for q in QUESTIONS]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(embeddings._jobs) < len(QUESTIONS) and time.monotonic() < deadline:
            time.sleep(0.01)
    for thread in threads:
        thread.join(10)
    assert len(runs) == 1 and sorted(runs[0]) == sorted([*QUESTIONS, "shared by every caller"])
    for question in QUESTIONS:
        assert np.allclose(results[question], alone[question], atol=1e-4)


def test_an_encoder_failure_reaches_every_caller_it_was_running_for() -> None:
    embeddings = LocalEmbeddings(cache_size=0)
    encoder = embeddings.encoder()

    def broken(texts: list[str]):  # type: ignore[no-untyped-def]
        raise MemoryError("no room for the batch")

    encoder.encode = broken  # type: ignore[method-assign]
    errors: list[BaseException] = []

    def ask(text: str) -> None:
        try:
            embeddings.embed_array([text])
        except MemoryError as exc:
            errors.append(exc)

    with embeddings._encoding:
        threads = [threading.Thread(target=ask, args=(q,)) for q in QUESTIONS[:3]]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(embeddings._jobs) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    for thread in threads:
        thread.join(10)
    assert len(errors) == 3 and not embeddings._jobs


def test_a_bulk_job_may_use_more_threads_for_the_same_vectors() -> None:
    one, two = LocalEmbeddings(cache_size=0), LocalEmbeddings(cache_size=0, threads=2)
    assert two.encoder().session.get_session_options().intra_op_num_threads == 2
    assert one.encoder().session.get_session_options().intra_op_num_threads == 1
    texts = ["I drive a red Toyota.", "word " * 300]
    assert np.allclose(one.embed_array(texts), two.embed_array(texts), atol=1e-5)
