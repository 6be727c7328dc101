"""Re-embedding a user's FAISS memories after a change of model: which memories need a
vector of the store's model, the index made of those vectors, and the background thread
per user that runs the store's pass (FaissMemory.reembed). Search keeps answering
meanwhile from the lexical index (FaissMemory._search)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

import numpy as np

from memory.faiss_files import UserIndex, folder_name
from memory.vector_index import new_index

log = logging.getLogger(__name__)


def needs_vectors(state: UserIndex, model: str) -> bool:
    """True when some memory has no vector of `model` in the index (tombstones are in
    `ntotal` but belong to no memory)."""
    in_index = state.index.ntotal - state.dead if state.index is not None else 0
    return bool(state.records) and (state.model != model or in_index != len(state.records))


def to_embed(state: UserIndex, model: str, vectors: dict[int, np.ndarray]) -> dict[int, str]:
    """What to embed (key -> its key text) for the memories `vectors` has no vector of;
    vectors of `model` already waiting in `other` are taken into `vectors` instead."""
    vectors.update({key: vector for key, (made_by, vector) in state.other.items()
                    if made_by == model})
    return {key: state.embedded.get(key, record.text)
            for key, record in state.records.items() if key not in vectors}


def reindex(state: UserIndex, vectors: Mapping[int, np.ndarray], model: str) -> None:
    """Gives `state` an exact index of `model`'s vectors of all its memories (the caller
    checked that `vectors` has them all); the store then fits its kind to its size."""
    keys = sorted(state.records)
    index = new_index(len(vectors[keys[0]]))
    index.add_with_ids(np.stack([vectors[key] for key in keys]).astype(np.float32),
                       np.array(keys, dtype=np.int64))
    state.index, state.model, state.dead = index, model, 0
    state.other.clear()
    state.unindexed.clear()


class Background:
    """At most one re-embedding thread per user, running `work(user_id)`; its own lock,
    so starting one never waits on a user's memories."""

    def __init__(self, work: Callable[[str], object], model: str) -> None:
        self._work = work
        self._model = model
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}

    def start(self, user_id: str) -> None:
        with self._lock:
            if user_id in self._threads:
                return
            thread = threading.Thread(target=self._run, args=(user_id,),
                                      name=f"reembed-{folder_name(user_id)[:8]}", daemon=True)
            self._threads[user_id] = thread
        log.info("re-embedding a user's memories with %s", self._model)
        thread.start()

    def _run(self, user_id: str) -> None:
        try:
            self._work(user_id)
        except Exception:
            log.exception("re-embedding failed; the next search tries again")
        finally:
            with self._lock:
                self._threads.pop(user_id, None)

    def wait(self, timeout: float | None = None) -> None:
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(timeout)
