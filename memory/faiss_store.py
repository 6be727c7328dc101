"""Semantic memory in FAISS: one index per user under the data folder. A snapshot (the
index and a JSON sidecar of texts and metadata) plus an append-only journal of the adds and
deletes since: a new memory costs one appended line, not a rewrite of everything the user
has; the journal folds into a new snapshot once it is half the snapshot's size. Loading
replays the journal (idempotently: keys only grow).

Several processes may share a folder (the server and `parley memory ingest`), so the disk,
not a process's copy, is the truth:
- Every write holds the user's lock (flock on `.lock`, exclusive) and first replays what
  others wrote, so keys are never handed out twice and a fold keeps everyone's entries.
- Each fold starts a new generation: the journal and index files are named by it, and
  `memories.json`, naming them, is replaced last (the commit). Files are never rewritten in
  place, so one stat of the current journal tells a reader whether anything changed: it
  grew (replay the new lines, no lock needed: lines are only appended), or it is gone or
  ends in a fold line (reload under the shared lock, which waits out a fold in progress).

One index per user keeps users apart by construction and lets a user's memories be
deleted with their folder. The lock works between processes on one machine; several
replicas need a shared engine behind the same interface (docs/memory-engines.md).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import fcntl
import os
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from memory.embeddings import LocalEmbeddings
from memory.faiss_disk import journal_path, read_snapshot, replay
from memory.faiss_files import (
    COMPACT_AT_LEAST,
    FOLD,
    LOCK,
    SNAPSHOT,
    UserIndex,
    append_lines,
    apply_entry,
    file_id,
    folder_name,
    key_of,
    record_row,
    remove_other_generations,
    write_index,
    write_snapshot,
)
from memory.faiss_reembed import Background, needs_vectors, reindex, to_embed
from memory.faiss_search import answer
from memory.fusion import Fusion, SearchMode
from memory.lexical import LexicalIndex
from memory.semantic import (
    MemoryRecord,
    Metadata,
    ScoredMemory,
    When,
    each_metadata,
    each_time,
    model_id,
)
from memory.vector_index import fitted, too_dead, without
from memory.vectors import unit_vectors

__all__ = ["FaissMemory"]


class FaissMemory:
    def __init__(self, root: Path, embeddings: LocalEmbeddings | Any, *,
                 compact_at: int = 20_000, fusion: Fusion | None = None) -> None:
        self.root = root
        self.embeddings = embeddings
        self.model = model_id(embeddings)  # recorded with each index and journal line
        self.fusion = fusion or Fusion()
        # Re-embedding users' vectors with this model, in the background.
        self._reembedding = Background(self.reembed, self.model)
        self._dirs: dict[str, Path] = {}
        # From this many memories a user's index is compact (memory/vector_index.py): exact
        # search reads every float, and at 100,000 memories that is 150 MB per query.
        self.compact_at = compact_at
        self._users: dict[str, UserIndex] = {}
        # FAISS, the copies and the files are used from threads. A lock per user, so one
        # user's fold (an index rebuild, a compaction) keeps no one else waiting; the
        # store's lock only guards making them.
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._flocked: set[str] = set()  # users whose file lock is held (under their lock)

    def _locked(self, user_id: str) -> threading.Lock:
        """The user's lock, which guards their copy and their files in this process."""
        lock = self._locks.get(user_id)
        if lock is None:
            with self._lock:
                lock = self._locks.setdefault(user_id, threading.Lock())
        return lock

    def _dir(self, user_id: str) -> Path:
        folder = self._dirs.get(user_id)
        if folder is None:  # cached: a turn asks for it a dozen times
            folder = self._dirs[user_id] = self.root / folder_name(user_id)
        return folder

    def _journal_path(self, user_id: str, generation: int) -> Path:
        return journal_path(self._dir(user_id), generation)

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        return unit_vectors(self.embeddings, texts)

    @contextmanager
    def _flock(self, user_id: str, *, exclusive: bool) -> Iterator[None]:
        """The user's lock between processes: exclusive to write, shared to reload.
        Re-entrant: the caller holds the user's lock, so only one thread of ours is here."""
        if user_id in self._flocked:
            yield
            return
        folder = self._dir(user_id)
        if exclusive:
            folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            self._flocked.add(user_id)
            yield
        finally:
            self._flocked.discard(user_id)
            os.close(fd)  # which releases the lock

    @contextmanager
    def _writing(self, user_id: str) -> Iterator[UserIndex]:
        """The user's memories as the disk holds them, while no other process can write."""
        with self._locked(user_id), self._flock(user_id, exclusive=True):
            yield self._load(user_id)

    def _load(self, user_id: str) -> UserIndex:
        """The user's memories as the disk holds them now (the caller holds the user's lock).
        The copy in memory costs one stat when no other process wrote since."""
        state = self._users.get(user_id)
        if state is None or (self._stale(user_id, state)
                             and not replay(self._journal_path(user_id, state.generation),
                                            state, tail=True)):
            state = self._users[user_id] = self._reload(user_id)
        return state

    def _stale(self, user_id: str, state: UserIndex) -> bool:
        # Every write grows the current journal, or (a fold) ends it and removes it.
        try:
            info = os.stat(self._journal_path(user_id, state.generation))
        except FileNotFoundError:
            # No journal: nothing stored yet (then a snapshot is news), or ours was folded.
            return state.journal_id is not None or (self._dir(user_id) / SNAPSHOT).exists()
        return file_id(info) != state.journal_id or info.st_size != state.seen

    def _reload(self, user_id: str) -> UserIndex:
        state = UserIndex(index=None)
        if not self._dir(user_id).is_dir():
            return state  # nothing stored: no lock file to make, nothing to read
        with self._flock(user_id, exclusive=False):  # no fold is half done while we read
            read_snapshot(self._dir(user_id), state, self.model)
            replay(self._journal_path(user_id, state.generation), state, tail=False)
        if state.model is None and state.index is not None:
            state.model = self.model  # a journal from before models were recorded
        state.unsaved = self._fit(state)
        return state

    def _fit(self, state: UserIndex) -> bool:
        """Converts the index to the kind its size calls for; True when it did."""
        index = fitted(state.index, state.records, self.compact_at)
        if index is None:
            return False
        state.index = index
        state.dead = 0  # a conversion keeps only the live keys' vectors
        return True

    def _commit(self, user_id: str, state: UserIndex,
                entries: Sequence[Mapping[str, Any]]) -> UserIndex:
        """Appends entries (under the write lock, where `state` has read the whole journal)
        and applies them to this copy, which is then what the disk holds: nobody else can
        have written meanwhile. Folds when the journal is long."""
        info = append_lines(self._journal_path(user_id, state.generation), state, entries)
        for entry in entries:  # as a replay would, without reading and parsing them back
            apply_entry(state, entry)
        # A torn line that ours ended is skipped, as a replay skips it.
        state.journaled += len(entries)
        state.journal_id = file_id(info)
        state.applied = state.seen = info.st_size
        self._users[user_id] = state
        if (self._fit(state) or state.unsaved or too_dead(state.index, state.dead)
                or state.journaled >= max(COMPACT_AT_LEAST, len(state.records) // 2)):
            self._fold(user_id, state)
        return state

    def _fold(self, user_id: str, state: UserIndex) -> None:
        """Writes this copy (current, under the write lock) as the next generation's
        snapshot. A crash at any step loses nothing: the old journal first announces the
        fold (a reader that meets that line reloads, waiting on the lock), the new files
        are written, memories.json is replaced (the commit), and only then the old files
        go."""
        folder = self._dir(user_id)
        generation = state.generation + 1
        if too_dead(state.index, state.dead):
            without(state.index, state.records)
            state.dead = 0
        append_lines(self._journal_path(user_id, state.generation), state,
                      [{"op": FOLD, "generation": generation}])
        index_file = write_index(folder, state.index, generation)
        journal = self._journal_path(user_id, generation)
        journal.write_bytes(b"")  # there from the commit on, for readers to stat
        write_snapshot(folder, state, generation, index_file)
        remove_other_generations(folder, {index_file, journal.name})
        state.generation, state.unsaved = generation, False
        state.journal_id = file_id(journal.stat())
        state.applied = state.seen = state.journaled = 0

    def _add(self, user_id: str, texts: Sequence[str], metadata: Metadata | None,
             keys: Sequence[str] | None = None, created_at: When = None
             ) -> list[MemoryRecord]:
        now = datetime.now(UTC)
        extra = {t.strip(): (m, w) for t, m, w in zip(
            texts, each_metadata(metadata, len(texts)), each_time(created_at, len(texts), now),
            strict=True) if t and t.strip()}
        pairs = [(t.strip(), (k or t).strip())
                 for t, k in zip(texts, keys or texts, strict=True) if t and t.strip()]
        with self._locked(user_id):
            state = self._load(user_id)
            todo = {text: key for text, key in pairs if text not in state.by_text}
            if not todo:
                return [state.records[state.by_text[text]] for text, _ in pairs]
        vectors: dict[str, np.ndarray] = {}
        while True:
            # Only texts not stored yet are embedded (a repeated fact costs no model run),
            # and outside the locks: the model is the slow part.
            vectors.update(zip(todo, self._vectors(list(todo.values())), strict=True))
            with self._writing(user_id) as state:
                # Another process may have deleted one of the texts meanwhile.
                todo = {t: k for t, k in pairs if t not in state.by_text and t not in vectors}
                if not todo:
                    return self._insert(user_id, state, pairs, vectors, extra)

    def _insert(self, user_id: str, state: UserIndex, pairs: Sequence[tuple[str, str]],
                vectors: Mapping[str, np.ndarray],
                extra: Mapping[str, tuple[dict[str, Any], datetime]]) -> list[MemoryRecord]:
        entries: list[dict[str, Any]] = []
        new: set[str] = set()
        for text, key in pairs:
            if text in state.by_text or text in new:  # the same fact again: keep one copy
                continue
            new.add(text)
            metadata, when = extra[text]
            record = MemoryRecord(id=uuid.uuid4().hex, text=text, created_at=when,
                                  metadata=metadata)
            vector = np.ascontiguousarray(vectors[text], dtype=np.float32)
            entries.append({"op": "add",
                            **record_row(state.next_id + len(entries), record, key),
                            "model": self.model,
                            "vector": base64.b64encode(vector.tobytes()).decode()})
        if entries:
            state = self._commit(user_id, state, entries)
        return [state.records[state.by_text[text]] for text, _ in pairs]

    def _search(self, user_id: str, query: str, k: int, min_score: float,
                mode: SearchMode, now: datetime | None) -> list[ScoredMemory]:
        with self._locked(user_id):
            state = self._load(user_id)
            if not state.records:
                return []
            stale = self._needs_vectors(state)
        if stale:
            self._start_reembedding(user_id)
        # While the vectors are re-embedded, the lexical index answers alone.
        vector = None if stale or mode == "lexical" else self._vectors([query])
        with self._locked(user_id):
            # The copy just checked, or newer if a write came in meanwhile: no second stat.
            state = self._users.get(user_id, state)
            scored, misfit = answer(state, query, vector, k, min_score, mode, now,
                                    self.fusion)
        if misfit:
            self._start_reembedding(user_id)
        return scored

    def _delete(self, user_id: str, memory_id: str) -> bool:
        with self._locked(user_id):
            if key_of(self._load(user_id), memory_id) is None:
                return False  # no lock (nor folder) taken for what is not there
        with self._writing(user_id) as state:
            key = key_of(state, memory_id)
            if key is None:
                return False
            self._commit(user_id, state, [{"op": "delete", "key": key}])
            return True

    def _clear(self, user_id: str) -> int:
        with self._locked(user_id):
            if not self._dir(user_id).is_dir():
                self._users.pop(user_id, None)
                return 0
        with self._writing(user_id) as state:
            # An empty next generation: other processes see the fold and reload.
            empty = dataclasses.replace(state, index=None, records={}, by_text={},
                                        lexical=LexicalIndex(), speakers=Counter(), about={},
                                        embedded={}, other={}, unindexed=set(),
                                        model=self.model, dead=0)
            self._fold(user_id, empty)
            self._users[user_id] = empty
            return len(state.records)

    def _needs_vectors(self, state: UserIndex) -> bool:
        return needs_vectors(state, self.model)

    def _start_reembedding(self, user_id: str) -> None:
        self._reembedding.start(user_id)

    def wait_for_reembedding(self, timeout: float | None = None) -> None:
        """Blocks until the background re-embedding threads are done (tests, shutdown)."""
        self._reembedding.wait(timeout)

    def reembed(self, user_id: str, batch: int = 64) -> int:
        """Gives every memory of the user a vector of this model, then commits a new
        generation whose index (and record of the model) is this model's. Embeds outside
        the locks; memories added meanwhile are taken in by another pass. Returns how many
        were embedded."""
        vectors: dict[int, np.ndarray] = {}
        while True:
            with self._locked(user_id):
                state = self._load(user_id)
                if not self._needs_vectors(state):
                    return len(vectors)
                todo = to_embed(state, self.model, vectors)
            keys = list(todo)
            for start in range(0, len(keys), batch):
                chunk = keys[start:start + batch]
                vectors.update(zip(chunk, self._vectors([todo[key] for key in chunk]),
                                   strict=True))
            with self._writing(user_id) as state:
                if set(state.records) - set(vectors):
                    continue  # memories came in (or were re-keyed) meanwhile: embed those
                reindex(state, vectors, self.model)
                self._fit(state)
                self._fold(user_id, state)
                return len(vectors)

    # The async interface: FAISS and the embedding model are CPU-bound, run off the loop.
    async def add(self, user_id: str, texts: Sequence[str],
                  metadata: Metadata | None = None, *,
                  keys: Sequence[str] | None = None,
                  created_at: When = None) -> list[MemoryRecord]:
        return await asyncio.to_thread(self._add, user_id, texts, metadata, keys, created_at)

    async def search(self, user_id: str, query: str, *, k: int = 5,
                     min_score: float = 0.0, mode: SearchMode = "hybrid",
                     now: datetime | None = None) -> list[ScoredMemory]:
        if k < 1:
            raise ValueError("k must be at least 1")
        return await asyncio.to_thread(self._search, user_id, query, k, min_score, mode, now)

    async def list(self, user_id: str, *, limit: int = 100,
                   offset: int = 0) -> list[MemoryRecord]:
        def rows() -> list[MemoryRecord]:
            with self._locked(user_id):
                records = sorted(self._load(user_id).records.values(),
                                 key=lambda r: r.created_at, reverse=True)
            return records[offset:offset + limit]

        return await asyncio.to_thread(rows)

    async def delete(self, user_id: str, memory_id: str) -> bool:
        return await asyncio.to_thread(self._delete, user_id, memory_id)

    async def clear(self, user_id: str) -> int:
        return await asyncio.to_thread(self._clear, user_id)
