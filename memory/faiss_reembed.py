"""Re-embedding a user's FAISS memories after a change of model, in the background: the
part of memory/faiss_store.py that gives every memory a vector of the store's model and
commits an index of that model alone. Search keeps answering meanwhile from the lexical
index (FaissMemory._search)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import numpy as np

from memory.faiss_files import UserIndex, folder_name
from memory.vector_index import new_index

log = logging.getLogger(__name__)


class Reembedding:
    """Mixed into FaissMemory, whose locks, loading and folds it uses."""

    model: str
    _lock: threading.Lock
    _migrating: dict[str, threading.Thread]

    if TYPE_CHECKING:
        def _load(self, user_id: str) -> UserIndex: ...
        def _writing(self, user_id: str) -> AbstractContextManager[UserIndex]: ...
        def _vectors(self, texts: Sequence[str]) -> np.ndarray: ...
        def _compact_when_large(self, state: UserIndex) -> bool: ...
        def _fold(self, user_id: str, state: UserIndex) -> None: ...

    def _needs_vectors(self, state: UserIndex) -> bool:
        """True when some memory has no vector of this model in the index (the caller holds
        self._lock)."""
        in_index = state.index.ntotal - state.dead if state.index is not None else 0
        return bool(state.records) and (state.model != self.model
                                        or in_index != len(state.records))

    def _start_reembedding(self, user_id: str) -> None:
        with self._lock:
            if user_id in self._migrating:
                return
            thread = threading.Thread(target=self._reembed, args=(user_id,),
                                      name=f"reembed-{folder_name(user_id)[:8]}", daemon=True)
            self._migrating[user_id] = thread
        log.info("re-embedding a user's memories with %s", self.model)
        thread.start()

    def _reembed(self, user_id: str) -> None:
        try:
            self.reembed(user_id)
        except Exception:
            log.exception("re-embedding failed; the next search tries again")
        finally:
            with self._lock:
                self._migrating.pop(user_id, None)

    def reembed(self, user_id: str, batch: int = 64) -> int:
        """Gives every memory of the user a vector of this model, then commits a new
        generation whose index (and record of the model) is this model's. Embeds outside
        the locks; memories added meanwhile are taken in by another pass. Returns how many
        were embedded."""
        vectors: dict[int, np.ndarray] = {}
        while True:
            with self._lock:
                state = self._load(user_id)
                if not self._needs_vectors(state):
                    return len(vectors)
                todo = {key: state.embedded.get(key, record.text)
                        for key, record in state.records.items() if key not in vectors}
                vectors.update({key: vector for key, (model, vector) in state.other.items()
                                if model == self.model})
            todo = {key: text for key, text in todo.items() if key not in vectors}
            keys = list(todo)
            for start in range(0, len(keys), batch):
                chunk = keys[start:start + batch]
                vectors.update(zip(chunk, self._vectors([todo[key] for key in chunk]),
                                   strict=True))
            with self._writing(user_id) as state:
                if set(state.records) - set(vectors):
                    continue  # memories came in (or were re-keyed) meanwhile: embed those
                keys = sorted(state.records)
                index = new_index(len(vectors[keys[0]]))
                index.add_with_ids(np.stack([vectors[key] for key in keys]).astype(np.float32),
                                   np.array(keys, dtype=np.int64))
                state.index, state.model, state.dead = index, self.model, 0
                state.other.clear()
                self._compact_when_large(state)
                self._fold(user_id, state)
                return len(vectors)

    def wait_for_reembedding(self, timeout: float | None = None) -> None:
        """Blocks until the background re-embedding threads are done (tests, shutdown)."""
        with self._lock:
            threads = list(self._migrating.values())
        for thread in threads:
            thread.join(timeout)
