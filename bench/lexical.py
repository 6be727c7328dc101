"""The lexical index, chosen by measure: Parley's in-memory BM25 (memory/lexical.py) beside
SQLite FTS5 (in the standard library), on LoCoMo recall (the same terms fed to both, the
turn and the two before it) and on the cost of adding and searching at 100,000 memories.

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
    results = {name: {"locomo_recall": locomo_recall(args.data, build),
                      str(args.size): at_scale(build, args.size)}
               for name, build in (("parley-bm25", ours), ("sqlite-fts5", fts5))}
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
