"""The clone-to-first-answer benchmark's report lines (the measurement itself is `make
bench`'s: it installs a fresh clone, minutes of work that no test should repeat)."""

from __future__ import annotations

from bench.first_answer import summary_lines


def test_the_summary_shows_both_caches() -> None:
    run = {"install_s": 51.2, "ready_s": 63.0, "first_answer_s": 66.4, "answer": "Hello!"}
    lines = summary_lines({"first_answer": {"cold_cache": run, "warm_cache": {
        **run, "install_s": 9.0}}})
    assert "| a fresh machine (empty package cache) | 51.2 | 63.0 | 66.4 |" in lines
    assert "| a second clone (warm package cache) | 9.0 | 63.0 | 66.4 |" in lines
    assert summary_lines({}) == []
