"""Garbage-collector settings for a long-running server.

A Parley process holds about a million objects once it has imported LangChain and built
its platform, and they live as long as it does: every full collection would walk them all
again, and CPython's default runs young collections every 700 net allocations, dozens of
times a turn. Frozen, and with young collections rarer, collection costs a fraction of
that (docs/benchmarks.md)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 10_000  # CPython's default is 700

# Several apps can run in one process (tests, an embedding host): the first to start tunes
# the collector, the last to stop restores it, whatever order they stop in.
_lock = threading.Lock()
_running = 0
_saved: tuple[int, ...] = ()


@contextmanager
def long_lived_heap() -> Iterator[None]:
    """While the server runs: what exists now is frozen out of the collector's generations,
    and young collections run less often. Undone when the last server stops."""
    global _running, _saved
    with _lock:
        if _running == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(YOUNG_THRESHOLD, *_saved[1:])
        _running += 1
        gc.collect()
        gc.freeze()
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0:
                gc.set_threshold(*_saved)
                gc.unfreeze()
