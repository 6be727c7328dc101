"""The lexical index, chosen by measure: Parley's in-memory BM25 (memory/lexical.py) beside
SQLite FTS5 (in the standard library), bm25s and tantivy (measured when installed: they
are not Parley's dependencies; `pip install bm25s scipy tantivy` to include them), on
LoCoMo recall (the same terms fed to each: the turn and the two before it) and on the cost
of adding and searching at 100,000 memories.

    python -m bench.lexical [--data DIR]   ->  bench/results/lexical.{json,md}
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.eval_memory import DEFAULT_DATA, RESULTS
from bench.locomo import context_key, load_folder
from bench.measure import percentiles
from bench.recall import Sentences
from memory.lexical import LexicalIndex
from memory.terms import terms

Search = Callable[[str, int], list[int]]


def ours(documents: list[str]) -> tuple[Search, float]:
    started = time.perf_counter()
    index = LexicalIndex()
    for key, text in enumerate(documents):
        index.add(key, text)
    seconds = time.perf_counter() - started
    return (lambda query, k: [key for key, _ in index.search(query, k)]), seconds


def fts5(documents: list[str]) -> tuple[Search, float]:
    """FTS5 over the same terms (so tokenizing and stemming are alike), ranked by its
    bm25(). One row per memory, committed once per 2,000, as a journal's batch would be."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE m USING fts5(terms, tokenize='unicode61')")
    started = time.perf_counter()
    for start in range(0, len(documents), 2_000):
        db.executemany("INSERT INTO m(rowid, terms) VALUES (?, ?)",
                       [(key, " ".join(terms(text))) for key, text in
                        enumerate(documents[start:start + 2_000], start)])
        db.commit()
    seconds = time.perf_counter() - started

    def search(query: str, k: int) -> list[int]:
        wanted = list(dict.fromkeys(terms(query)))
        if not wanted:
            return []
        match = " OR ".join(f'"{term}"' for term in wanted)
        rows = db.execute("SELECT rowid FROM m WHERE m MATCH ? ORDER BY bm25(m) LIMIT ?",
                          (match, k)).fetchall()
        return [int(row[0]) for row in rows]

    return search, seconds


def bm25s_index(documents: list[str]) -> tuple[Search, float]:
    """bm25s: a sparse matrix of precomputed scores. It has no incremental add: every new
    memory means indexing the user's memories again (the add cost below is that rebuild,
    per memory, once)."""
    import bm25s

    started = time.perf_counter()
    retriever = bm25s.BM25(k1=1.2, b=0.75)
    retriever.index([terms(text) or ["-"] for text in documents], show_progress=False)
    seconds = time.perf_counter() - started

    def search(query: str, k: int) -> list[int]:
        wanted = [t for t in dict.fromkeys(terms(query)) if t in retriever.vocab_dict]
        if not wanted:
            return []
        found, scores = retriever.retrieve([wanted], k=min(k, len(documents)),
                                           show_progress=False)
        return [int(doc) for doc, score in zip(found[0], scores[0], strict=True) if score > 0]

    return search, seconds


def tantivy_index(documents: list[str]) -> tuple[Search, float]:
    """tantivy: Lucene-like segments; a memory is searchable after a commit (one per
    2,000 here; a chat adds one a turn, so a commit a turn)."""
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("terms", stored=False, tokenizer_name="whitespace")
    builder.add_integer_field("key", stored=True, indexed=False)
    index = tantivy.Index(builder.build())
    started = time.perf_counter()
    writer = index.writer(heap_size=50_000_000, num_threads=1)
    for start in range(0, len(documents), 2_000):
        for key, text in enumerate(documents[start:start + 2_000], start):
            writer.add_document(tantivy.Document(key=key, terms=" ".join(terms(text))))
        writer.commit()
    index.reload()
    seconds = time.perf_counter() - started
    searcher = index.searcher()

    def search(query: str, k: int) -> list[int]:
        wanted = list(dict.fromkeys(terms(query)))
        if not wanted:
            return []
        hits = searcher.search(index.parse_query(" OR ".join(wanted), ["terms"]), k).hits
        return [int(searcher.doc(address)["key"][0]) for _score, address in hits]

    return search, seconds


def locomo_recall(data: Path, build: Callable[[list[str]], tuple[Search, float]]
                  ) -> dict[str, float]:
    found = {5: 0, 10: 0}
    asked = 0
    for conversation in load_folder(data):
        turns = conversation.turns
        search, _ = build([context_key(turns, i) for i in range(len(turns))])
        for question in conversation.questions:
            asked += 1
            ranked = [turns[key].dia_id for key in search(question.text, 10)]
            for k in found:
                found[k] += bool(question.evidence.intersection(ranked[:k]))
    return {f"@{k}": round(hits / asked, 3) for k, hits in found.items()}


def at_scale(build: Callable[[list[str]], tuple[Search, float]], size: int
             ) -> dict[str, Any]:
    sentences = Sentences()
    documents = sentences.make(size, 12)
    queries = sentences.make(200, 6)
    search, seconds = build(documents)
    for query in queries[:20]:
        search(query, 16)
    samples = []
    for query in queries:
        started = time.perf_counter()
        search(query, 16)
        samples.append((time.perf_counter() - started) * 1000)
    return {"add_ms_per_memory": round(seconds / size * 1000, 4),
            "search_ms": percentiles(samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--size", type=int, default=100_000)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    for name, build in (("parley-bm25", ours), ("sqlite-fts5", fts5), ("bm25s", bm25s_index),
                        ("tantivy", tantivy_index)):
        try:
            results[name] = {"locomo_recall": locomo_recall(args.data, build),
                             str(args.size): at_scale(build, args.size)}
        except ModuleNotFoundError as exc:
            print(f"{name}: not installed ({exc.name})")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lexical.json").write_text(json.dumps(results, indent=2))
    lines = ["| lexical index | LoCoMo BM25-only r@5 / r@10 | add ms per memory | "
             f"search p50 / p99 ms at {args.size:,} |", "|---|---|---|---|"]
    for name, result in results.items():
        scale = result[str(args.size)]
        lines.append(f"| {name} | {result['locomo_recall']['@5']} / "
                     f"{result['locomo_recall']['@10']} | {scale['add_ms_per_memory']} | "
                     f"{scale['search_ms']['p50']} / {scale['search_ms']['p99']} |")
    (RESULTS / "lexical.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
