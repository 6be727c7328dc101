"""A user's lexical index: BM25 over the terms of each memory, kept in memory beside the
vectors and rebuilt from the texts when a user's memories load (so it needs no file of its
own and can never disagree with the journal).

Why not SQLite FTS5, bm25s or tantivy: measured on the LoCoMo development split and at
100,000 memories (bench/lexical.py, docs/benchmarks.md), FTS5 ranks the same (it is BM25
too) but each user's index would be a second file to keep in step with the journal across
processes and crashes; bm25s rebuilds its matrix on every add; tantivy needs a writer commit
per add. Postings here are numpy arrays, so a query over 100,000 memories costs a few array
operations per query term.

The scoring formula is `bm25`, shared with the Redis engine, which rescores RediSearch's
candidates with it and the user's own statistics: both engines rank alike.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

import numpy as np

from memory.terms import terms

K1 = 1.2
B = 0.75
COMMON = 5_000  # see rare_first
# Term counts and lengths: arrays to score documents, float32 scalars to bound a score.
Counts = TypeVar("Counts", np.ndarray, np.float32)


def idf(n_docs: int, df: int) -> float:
    # BM25's idf, floored at zero by the +1 (Lucene's and RediSearch's BM25STD form).
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def bm25(tf: Counts, length: Counts, avg_length: float, weight: float) -> Counts:
    # The constants folded first, so the arrays see fewer operations and temporaries.
    slope = np.float32(K1 * B / max(avg_length, 1e-9))
    result: Counts = (np.float32(weight * (K1 + 1.0)) * tf
                      / (tf + (length * slope + np.float32(K1 * (1.0 - B)))))
    return result


def rare_first(wanted: Iterable[str], df: Mapping[str, int], n_docs: int
               ) -> tuple[list[str], list[str]]:
    """The query's terms found in some memory, split into those that choose candidates and
    those only added to them (both engines use it, so they find and add up alike). In a
    large index a term found in more than a tenth of the memories (at least COMMON of
    them) is common: a memory that shares nothing but common words with the question
    cannot rank among the best few, and scoring such a term's every posting cost most of
    a search at 100,000 memories. Below that size every term chooses: exact. A question
    of common words alone has them all choose."""
    present = [t for t in dict.fromkeys(wanted) if df.get(t, 0)]
    cut = max(COMMON, n_docs // 10)
    rare = [t for t in present if df[t] <= cut] or present
    return rare, [t for t in present if t not in rare]


def indexed_text(text: str, embedded: str | None, speaker: str | None) -> str:
    """What the lexical index matches in both engines: the key (the text by default), the
    text when the key leaves it out, and the speaker's name, so "what did Ada say" finds
    Ada's words."""
    parts = [embedded or text]
    if embedded and text not in embedded:
        parts.append(text)
    if speaker and speaker.lower() not in parts[0].lower():
        parts.insert(0, speaker)
    return "\n".join(parts)


class _Postings:
    """One term's documents as growing arrays (slots ascend: appended in order), so a search
    reads them as they are: no conversion from lists after each add. With what bounds the
    term's score in any of them: its largest count and the shortest document."""

    __slots__ = ("max_tf", "min_length", "n", "slots", "tfs")

    def __init__(self) -> None:
        self.slots = np.zeros(4, np.int64)
        self.tfs = np.zeros(4, np.float32)
        self.n = 0
        self.max_tf = 0.0
        self.min_length = math.inf

    def add(self, slot: int, tf: int, length: int) -> None:
        if self.n == len(self.slots):  # grow by half: amortised O(1) appends
            size = self.n + self.n // 2 + 1
            self.slots = np.resize(self.slots, size)
            self.tfs = np.resize(self.tfs, size)
        self.slots[self.n] = slot
        self.tfs[self.n] = tf
        self.n += 1
        # Not lowered by removals: the bound stays safe, only a little loose.
        self.max_tf = max(self.max_tf, float(tf))
        self.min_length = min(self.min_length, float(length))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return self.slots[:self.n], self.tfs[:self.n]

    def bound(self, avg_length: float, weight: float) -> float:
        """The most this term adds to a document's score (bm25 grows with the count and
        shrinks with the length), a little over for float32's rounding. In float32 scalars,
        not arrays: numpy's scalar arithmetic costs far less, and this runs per common term
        of every search."""
        most = bm25(np.float32(self.max_tf), np.float32(self.min_length), avg_length, weight)
        return float(most) * (1.0 + 1e-5)


class LexicalIndex:
    """BM25 over memories named by integer keys. Deleted memories leave a dead slot whose
    length is infinite, so it scores nothing (their postings stay until the index is
    rebuilt at the next load)."""

    def __init__(self) -> None:
        self._slot_of: dict[int, int] = {}
        self._keys: list[int] = []
        self._terms: list[Counter[str] | None] = []
        self._length = np.zeros(0, np.float32)
        self._postings: dict[str, _Postings] = {}
        self._df: Counter[str] = Counter()
        self._total_length = 0
        # Common terms' counts per slot (0 where absent), made as a term becomes common:
        # a candidate's count is then one array read, not a search in long postings.
        self._dense: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, key: int) -> bool:
        return key in self._slot_of

    def add(self, key: int, text: str) -> None:
        if key in self._slot_of:
            return
        counts = Counter(terms(text))
        slot = len(self._keys)
        self._slot_of[key] = slot
        self._keys.append(key)
        self._terms.append(counts)
        if slot >= len(self._length):  # grow by half: amortised O(1) appends
            self._length = np.resize(self._length, max(16, slot + slot // 2 + 1))
            for term, dense in self._dense.items():
                self._dense[term] = np.concatenate(
                    [dense, np.zeros(len(self._length) - len(dense), np.float32)])
        length = sum(counts.values())
        self._length[slot] = length
        self._total_length += length
        for term, tf in counts.items():
            self._postings.setdefault(term, _Postings()).add(slot, tf, length)
            self._df[term] += 1
            if term in self._dense:
                self._dense[term][slot] = tf
            elif self._df[term] > max(COMMON, len(self._slot_of) // 10):
                self._counts(term)

    def remove(self, key: int) -> None:
        slot = self._slot_of.pop(key, None)
        if slot is None:
            return
        counts = self._terms[slot]
        self._terms[slot] = None
        self._length[slot] = np.inf  # bm25 of any term is then 0
        if counts:
            self._total_length -= sum(counts.values())
            for term in counts:
                self._df[term] -= 1
                if self._df[term] <= 0:
                    del self._df[term]

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """The k best (key, score) pairs, best first; only memories sharing a term."""
        return self.search_terms(terms(query), k)

    def search_terms(self, query_terms: Iterable[str], k: int) -> list[tuple[int, float]]:
        n_docs = len(self._slot_of)
        if not n_docs or k < 1:
            return []
        avg = self._total_length / n_docs
        rare, common = rare_first(query_terms, self._df, n_docs)
        if not rare:
            return []
        scores = np.zeros(len(self._keys), np.float32)
        chosen = []
        for term in rare:
            slots, tfs = self._postings[term].arrays()
            # A term lists a document once, so a plain fancy-index add is exact here;
            # a removed memory's infinite length makes its score 0.
            scores[slots] += bm25(tfs, self._length[slots], avg, idf(n_docs, self._df[term]))
            chosen.append(slots)
        hits = chosen[0] if len(chosen) == 1 else _distinct(np.concatenate(chosen), len(scores))
        hits = hits[scores[hits] > 0]  # (not removed memories)
        if common and len(hits) > k:
            # A memory below the k-th best score even with the most the common terms could
            # add cannot be among the best k (MaxScore): it is not looked up in their
            # postings, which are most of the memories.
            rest = sum(self._postings[t].bound(avg, idf(n_docs, self._df[t])) for t in common)
            floor = np.partition(scores[hits], len(hits) - k)[len(hits) - k]
            hits = hits[scores[hits] + rest >= floor]
        for term in common:  # (hits are distinct: the fancy-index add is exact)
            scores[hits] += bm25(self._counts(term)[hits], self._length[hits], avg,
                                 idf(n_docs, self._df[term]))
        if len(hits) > k:
            kth = np.partition(scores[hits], len(hits) - k)[len(hits) - k]
            above = hits[scores[hits] > kth]
            # Of those tied with the k-th best, the first stored.
            hits = np.concatenate([above, np.sort(hits[scores[hits] == kth])[:k - len(above)]])
        # Ties break by key, so both engines order equal scores alike.
        order = sorted(hits.tolist(), key=lambda s: (-float(scores[s]), self._keys[s]))
        return [(self._keys[s], float(scores[s])) for s in order]

    def _counts(self, term: str) -> np.ndarray:
        dense = self._dense.get(term)
        if dense is None:
            dense = self._dense[term] = np.zeros(len(self._length), np.float32)
            slots, tfs = self._postings[term].arrays()
            dense[slots] = tfs
        return dense

    def stats(self, query_terms: Sequence[str]) -> tuple[int, float, dict[str, int]]:
        """(documents, average length, document frequency of each term): what `bm25`
        needs to score a document from outside the index."""
        n = len(self._slot_of)
        return n, (self._total_length / n if n else 0.0), {
            t: self._df.get(t, 0) for t in query_terms}


def _distinct(slots: np.ndarray, size: int) -> np.ndarray:
    """Each slot once (in no particular order), in a few passes over `slots` alone: each
    position writes its index at its slot, and the one whose write stayed is kept."""
    owner = np.empty(size, np.int32)  # only the slots written here are read back
    at = np.arange(len(slots), dtype=np.int32)
    owner[slots] = at
    result: np.ndarray = slots[owner[slots] == at]
    return result
