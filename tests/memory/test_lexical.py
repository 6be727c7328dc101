"""The lexical side on its own: terms, BM25 ranking and its bookkeeping, and what a question
says about who and when."""

from __future__ import annotations

from datetime import UTC, datetime

from memory.lexical import LexicalIndex
from memory.query_hints import read_hints
from memory.terms import terms


def test_terms_fold_inflections_and_drop_stop_words() -> None:
    assert terms("I painted the kids' bikes, running late!") == ["paint", "kid", "bike",
                                                                  "run", "late"]
    assert terms("When did Melanie go camping?") == ["melanie", "go", "camp"]
    assert terms("Stories and studies") == ["story", "study"]


def test_bm25_ranks_rare_words_first_and_forgets_removed_memories() -> None:
    index = LexicalIndex()
    index.add(1, "we went camping by the lake")
    index.add(2, "the lake was cold, the lake was deep")
    index.add(3, "I bought a kayak for the lake")
    assert [k for k, _ in index.search("kayak on the lake", 3)] == [3, 2, 1]
    assert index.search("nothing matches", 3) == []
    index.remove(3)
    assert [k for k, _ in index.search("kayak", 3)] == []
    assert 3 not in index and len(index) == 2
    index.add(3, "kayak again")  # a key may come back after a removal
    assert [k for k, _ in index.search("kayak", 3)] == [3]


def test_a_question_names_speakers_and_times() -> None:
    now = datetime(2024, 9, 27, 12, tzinfo=UTC)
    hints = read_hints("What did Caroline paint in May?", ["Caroline", "Melanie"], now)
    assert hints.speakers == {"caroline"}
    assert hints.window is not None and hints.window.month == 5
    assert hints.window.contains(datetime(2021, 5, 3, tzinfo=UTC))
    assert not hints.window.contains(datetime(2024, 6, 1, tzinfo=UTC))
    week = read_hints("what did I cook last week", [], now).window
    assert week is not None and week.contains(datetime(2024, 9, 19, tzinfo=UTC))
    assert not week.contains(datetime(2024, 8, 1, tzinfo=UTC))
    year = read_hints("trips in June 2023", [], now).window
    assert year is not None and year.contains(datetime(2023, 6, 30, tzinfo=UTC))
    assert not year.contains(datetime(2024, 6, 1, tzinfo=UTC))
    ago = read_hints("what happened two weeks ago", [], now).window
    assert ago is not None and ago.contains(datetime(2024, 9, 13, tzinfo=UTC))
    # "may" as a verb is not a month; a name must be whole words.
    assert not read_hints("May I ask about Carol?", ["Caroline"], now)


def test_common_words_only_add_to_what_rarer_words_found(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Past COMMON memories, a word in more than a tenth of them chooses no candidates, and
    candidates that cannot reach the k-th best are not looked up in its postings: the
    result is still the best k of the memories holding a rarer word, scored with every
    word of the question. A question of common words alone is answered exactly."""
    import random

    import numpy as np

    import memory.lexical as lexical

    monkeypatch.setattr(lexical, "COMMON", 20)
    rng = random.Random(5)
    vocab = [f"w{i}" for i in range(200)]
    weights = [1 / (i + 1) for i in range(200)]
    docs = {key: " ".join(rng.choices(vocab, weights, k=rng.randint(3, 14)))
            for key in range(600)}
    index = LexicalIndex()
    for key, text in docs.items():
        index.add(key, text)
    for key in rng.sample(sorted(docs), 60):
        index.remove(key)
        del docs[key]
    n, avg, _ = index.stats([])
    # Random questions, and some of common words alone (then every word chooses).
    queries = [terms("w0"), terms("w1 w0 w2"), *(
        list(dict.fromkeys(terms(" ".join(rng.choices(vocab, weights, k=5)))))
        for _ in range(40))]
    all_common = 0
    for query in queries:
        df = {t: sum(t in terms(d) for d in docs.values()) for t in query}
        present = [t for t in query if df[t]]
        rare = [t for t in present if df[t] <= max(20, n // 10)] or present
        all_common += bool(present) and all(df[t] > max(20, n // 10) for t in present)
        if not rare:
            continue
        expected = []
        for key, text in docs.items():
            words = terms(text)
            if not set(rare) & set(words):
                continue
            score = np.zeros((), np.float32)
            for t in [*rare, *(t for t in query if t not in rare)]:  # the index's order
                if words.count(t):
                    score += lexical.bm25(np.array(words.count(t), np.float32),
                                          np.array(len(words), np.float32), avg,
                                          lexical.idf(n, df[t]))
            expected.append((-float(score), key))
        for k in (1, 4, 16):
            best = sorted(expected)[:k]
            found = index.search_terms(query, k)
            assert [round(s, 4) for _, s in found] == [round(-s, 4) for s, _ in best]
            assert [key for key, _ in found] == [key for _, key in best]  # ties by key
    assert all_common >= 2
