"""Reading a user's FAISS folder as faiss_store.py writes it: the snapshot, then the
journal's lines past what a copy has applied (docs/memory-engines.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import faiss

from memory.faiss_files import (
    FOLD,
    JOURNAL,
    SNAPSHOT,
    UserIndex,
    apply_entry,
    file_id,
    index_words,
    journal_entry,
    row_record,
)
from memory.vector_index import tombstones, unindexed


def journal_path(folder: Path, generation: int) -> Path:
    # Generation 0 keeps the name folders had before generations existed.
    return folder / (JOURNAL if generation == 0 else f"journal.{generation}.jsonl")


def read_snapshot(folder: Path, state: UserIndex, model: str) -> None:
    """The snapshot into `state`: the index, the records and their words."""
    if not (folder / SNAPSHOT).is_file():
        return
    meta = json.loads((folder / SNAPSHOT).read_text())
    state.generation = int(meta.get("generation", 0))
    # A snapshot from before generations names no index: it was index.faiss.
    index_file = meta.get("index", "index.faiss")
    if index_file is not None:
        state.index = faiss.read_index(str(folder / index_file))
    # A snapshot from before models were recorded: assume this model made it (a search
    # whose vector does not fit the index re-embeds all the same).
    state.model = meta.get("model") or model
    state.next_id = int(meta["next_id"])
    for row in meta["records"]:
        key = int(row["key"])
        record = state.records[key] = row_record(row)
        state.by_text[record.text] = key
        if row.get("embedded"):
            state.embedded[key] = row["embedded"]
        index_words(state, key, record, row.get("embedded"))
    state.dead = tombstones(state.index, state.records)
    state.unindexed = unindexed(state.index, state.records)
    journal = journal_path(folder, state.generation)
    if not journal.exists():
        journal.touch()  # (an old snapshot may have none) so that readers have one to stat


def replay(path: Path, state: UserIndex, *, tail: bool) -> bool:
    """Applies the journal's lines past `state.applied`. A tail read takes no lock:
    lines are only ever appended, and a line still being written waits for the next
    read. False when the tail is not this copy's to extend (the journal was replaced,
    or a fold began): the caller reloads."""
    try:
        with path.open("rb") as journal:
            info = os.fstat(journal.fileno())
            if tail and (state.journal_id not in (None, file_id(info))
                         or info.st_size < state.applied):
                return False
            journal.seek(state.applied)
            data = journal.read()
    except FileNotFoundError:
        return not tail
    end = data.rfind(b"\n") + 1
    for line in data[:end].splitlines():
        entry = journal_entry(line)
        if entry is not None and entry.get("op") == FOLD:
            if tail:
                return False
            continue  # a fold that crashed before its commit: this generation goes on
        if entry is not None:
            apply_entry(state, entry)
            state.journaled += 1
    state.journal_id = file_id(info)
    state.seen = state.applied + len(data)
    state.applied += end
    return True
