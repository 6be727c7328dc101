"""A user's FAISS memory as data: the in-memory state of one user's index, and the pieces
of its on-disk form (journal lines, snapshot, index files, generations). How processes
share a folder (locks, replay, folds) is memory/faiss_store.py's job."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from memory.fusion import About
from memory.lexical import LexicalIndex, indexed_text
from memory.semantic import MemoryRecord, speaker_of
from memory.vector_index import is_compact, new_index


@dataclass
class UserIndex:
    index: Any  # faiss.IndexIDMap2 over inner product on unit vectors = cosine
    dead: int = 0  # the index's vectors of deleted memories (memory/vector_index.py)
    records: dict[int, MemoryRecord] = field(default_factory=dict)
    next_id: int = 1
    by_text: dict[str, int] = field(default_factory=dict)  # text -> key, to skip repeats
    journaled: int = 0  # entries in the journal since the snapshot
    # Where this copy stands on disk, to notice and replay other processes' writes.
    generation: int = 0  # of the snapshot loaded; names its journal and index files
    journal_id: tuple[int, int] | None = None  # (device, inode); None: no journal yet
    applied: int = 0  # journal bytes replayed, always up to a line's end
    seen: int = 0  # journal bytes read; more than `applied` when the last line is unfinished
    unsaved: bool = False  # compacted at load, not yet on disk: the next write folds
    # Words beside the vectors (rebuilt from the texts at load: no file of its own).
    lexical: LexicalIndex = field(default_factory=LexicalIndex)
    speakers: Counter[str] = field(default_factory=Counter)  # names in `speaker` metadata
    about: dict[int, About] = field(default_factory=dict)  # per memory, for fusion
    embedded: dict[int, str] = field(default_factory=dict)  # keys that are not the text
    # The model that made the vectors in `index` (None: an index from before models were
    # recorded). Vectors of another model wait in `other` until the index is re-embedded.
    model: str | None = None
    other: dict[int, tuple[str | None, np.ndarray]] = field(default_factory=dict)
    # Memories the snapshot has no vector of (they were in `other`, which a fold does not
    # write): deleting one leaves no tombstone behind. Re-embedding gives them vectors.
    unindexed: set[int] = field(default_factory=set)


JOURNAL = "journal.jsonl"  # generation 0's: the name from before generations existed
SNAPSHOT = "memories.json"
LOCK = ".lock"
FOLD = "fold"  # the journal line that announces a new generation
COMPACT_AT_LEAST = 256  # journal entries before a snapshot is worth writing


def record_row(key: int, record: MemoryRecord, embedded: str | None = None
               ) -> dict[str, Any]:
    row = {"key": key, "id": record.id, "text": record.text,
           "created_at": record.created_at.isoformat(), "metadata": dict(record.metadata)}
    if embedded is not None and embedded != record.text:
        row["embedded"] = embedded  # what the vector was made of: re-embedding needs it
    return row


def row_record(row: Mapping[str, Any]) -> MemoryRecord:
    return MemoryRecord(id=row["id"], text=row["text"],
                        created_at=datetime.fromisoformat(row["created_at"]),
                        metadata=row.get("metadata", {}))


def index_words(state: UserIndex, key: int, record: MemoryRecord, embedded: str | None
                ) -> None:
    """The memory in the lexical index, and what fusion needs of it (its speaker, time)."""
    speaker = speaker_of(record.metadata)
    state.lexical.add(key, indexed_text(record.text, embedded, speaker))
    state.about[key] = About(record.text, record.created_at, speaker)
    if speaker:
        state.speakers[speaker] += 1


def folder_name(user_id: str) -> str:
    # A hash, never the raw id: no path traversal, no user name on disk.
    return hashlib.sha256(user_id.encode()).hexdigest()[:40]


def file_id(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


def journal_entry(line: bytes) -> dict[str, Any] | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None  # a line torn by a crash (and ended by the next writer)
    return entry if isinstance(entry, dict) else None


def put(state: UserIndex, key: int, record: MemoryRecord, vector: np.ndarray, *,
        embedded: str | None = None, model: str | None = None) -> None:
    state.records[key] = record
    state.by_text[record.text] = key
    state.next_id = max(state.next_id, key + 1)
    if embedded is not None and embedded != record.text:
        state.embedded[key] = embedded
    index_words(state, key, record, embedded)
    if state.index is None and state.model in (None, model):
        state.index = new_index(len(vector))
        state.model = model
    if (state.index is None or (model is not None and model != state.model)
            or state.index.d != len(vector)):
        state.other[key] = (model, vector)  # another model's: kept for re-embedding
        return
    state.index.add_with_ids(vector[None], np.array([key], dtype=np.int64))


def apply_entry(state: UserIndex, entry: Mapping[str, Any]) -> None:
    # Idempotent, since keys are never reused: lines read twice change nothing.
    key = int(entry["key"])
    if entry["op"] == "add" and key not in state.records:
        vector = np.frombuffer(base64.b64decode(entry["vector"]), dtype=np.float32)
        # A line from before models were recorded was made by the index's model.
        put(state, key, row_record(entry), vector, embedded=entry.get("embedded"),
            model=entry.get("model", state.model))
    elif entry["op"] == "delete" and key in state.records:
        forget(state, key)


def forget(state: UserIndex, key: int) -> None:
    record = state.records.pop(key)
    if state.by_text.get(record.text) == key:
        del state.by_text[record.text]
    state.embedded.pop(key, None)
    state.lexical.remove(key)
    state.about.pop(key, None)
    speaker = speaker_of(record.metadata)
    if speaker:
        state.speakers[speaker] -= 1
        if state.speakers[speaker] <= 0:
            del state.speakers[speaker]
    if state.other.pop(key, None) is not None or state.index is None:
        return
    if key in state.unindexed:
        state.unindexed.discard(key)  # no vector anywhere: nothing to remove or count
    elif is_compact(state.index):
        state.dead += 1  # a tombstone, until the index is rebuilt without it
    else:
        state.index.remove_ids(np.array([key], dtype=np.int64))


def append_lines(path: Path, state: UserIndex, entries: Sequence[Mapping[str, Any]]
                 ) -> os.stat_result:
    """Appends under the write lock, where `state` has just read the whole journal; returns
    the journal's state after the write (the writer's copy is then current without
    reading its own lines back)."""
    data = "".join(json.dumps(entry) + "\n" for entry in entries).encode()
    if state.seen > state.applied:  # a line torn by a crashed writer: end it, or it eats ours
        data = b"\n" + data
    with path.open("ab") as journal:
        journal.write(data)
        journal.flush()
        return os.fstat(journal.fileno())


def write_index(folder: Path, index: Any, generation: int) -> str | None:
    # A new name, so no reader can meet it half written: only the commit points at it.
    if index is None:
        return None
    name = f"index.{generation}.faiss"
    faiss.write_index(index, str(folder / name))
    _fsync(folder / name)  # on disk before the commit names it, even across a power loss
    return name


def write_snapshot(folder: Path, state: UserIndex, generation: int,
                    index_file: str | None) -> None:
    rows = [record_row(key, r, state.embedded.get(key)) for key, r in state.records.items()]
    tmp = folder / f"{SNAPSHOT}.tmp"
    tmp.write_text(json.dumps({"generation": generation, "index": index_file,
                               "model": state.model, "next_id": state.next_id,
                               "records": rows}))
    _fsync(tmp)
    os.replace(tmp, folder / SNAPSHOT)
    # The rename (and the new journal's entry) durable before the old generation's files
    # are removed: after a power loss the folder holds one whole generation or the other.
    _fsync(folder)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_other_generations(folder: Path, keep: set[str | None]) -> None:
    # Garbage once the commit names other files (a crashed fold may have left some too).
    for path in folder.iterdir():
        if path.name.startswith(("index.", "journal.")) and path.name not in keep:
            path.unlink(missing_ok=True)


def key_of(state: UserIndex, memory_id: str) -> int | None:
    return next((k for k, r in state.records.items() if r.id == memory_id), None)
