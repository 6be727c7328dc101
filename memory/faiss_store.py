"""Semantic memory in FAISS: one index per user under the data folder, with a JSON sidecar
for texts and metadata, both written atomically and reloaded at start.

One index per user keeps users apart by construction and lets a user's memories be
deleted with their folder. FAISS files serve one process; several replicas need a shared
engine behind the same interface (docs/memory-engines.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from memory.embeddings import LocalEmbeddings
from memory.semantic import MemoryRecord, ScoredMemory
from memory.vectors import unit_vectors


@dataclass
class _UserIndex:
    index: Any  # faiss.IndexIDMap2 over inner product on unit vectors = cosine
    records: dict[int, MemoryRecord] = field(default_factory=dict)
    next_id: int = 1


def _folder_name(user_id: str) -> str:
    # A hash, never the raw id: no path traversal, no user name on disk.
    return hashlib.sha256(user_id.encode()).hexdigest()[:40]


class FaissMemory:
    def __init__(self, root: Path, embeddings: LocalEmbeddings | Any) -> None:
        self.root = root
        self.embeddings = embeddings
        self._users: dict[str, _UserIndex] = {}
        self._lock = threading.Lock()  # FAISS and the files are touched from threads

    def _dir(self, user_id: str) -> Path:
        return self.root / _folder_name(user_id)

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        return unit_vectors(self.embeddings, texts)

    def _load(self, user_id: str) -> _UserIndex:
        if user_id in self._users:
            return self._users[user_id]
        folder = self._dir(user_id)
        state: _UserIndex
        if (folder / "index.faiss").is_file():
            meta = json.loads((folder / "memories.json").read_text())
            state = _UserIndex(index=faiss.read_index(str(folder / "index.faiss")),
                               next_id=int(meta["next_id"]))
            for row in meta["records"]:
                state.records[int(row["key"])] = MemoryRecord(
                    id=row["id"], text=row["text"],
                    created_at=datetime.fromisoformat(row["created_at"]),
                    metadata=row.get("metadata", {}))
        else:
            state = _UserIndex(index=None)
        self._users[user_id] = state
        return state

    def _save(self, user_id: str, state: _UserIndex) -> None:
        folder = self._dir(user_id)
        folder.mkdir(parents=True, exist_ok=True)
        if state.index is not None:
            tmp = folder / "index.faiss.tmp"
            faiss.write_index(state.index, str(tmp))
            os.replace(tmp, folder / "index.faiss")
        rows = [{"key": key, "id": r.id, "text": r.text, "created_at": r.created_at.isoformat(),
                 "metadata": dict(r.metadata)} for key, r in state.records.items()]
        tmp = folder / "memories.json.tmp"
        tmp.write_text(json.dumps({"next_id": state.next_id, "records": rows}))
        os.replace(tmp, folder / "memories.json")

    def _add(self, user_id: str, texts: Sequence[str], metadata: Mapping[str, Any]
             ) -> list[MemoryRecord]:
        clean = [t.strip() for t in texts if t and t.strip()]
        vectors = self._vectors(clean) if clean else np.zeros((0, 1), np.float32)
        with self._lock:
            state = self._load(user_id)
            known = {r.text: r for r in state.records.values()}
            added: list[MemoryRecord] = []
            keys: list[int] = []
            rows: list[np.ndarray] = []
            for text, vector in zip(clean, vectors, strict=True):
                if text in known:  # the same fact again: keep one copy
                    added.append(known[text])
                    continue
                record = MemoryRecord(id=uuid.uuid4().hex, text=text,
                                      created_at=datetime.now(UTC), metadata=dict(metadata))
                key = state.next_id
                state.next_id += 1
                state.records[key] = record
                known[text] = record
                keys.append(key)
                rows.append(vector)
                added.append(record)
            if rows:
                if state.index is None:
                    state.index = faiss.IndexIDMap2(faiss.IndexFlatIP(len(rows[0])))
                state.index.add_with_ids(np.stack(rows), np.array(keys, dtype=np.int64))
                self._save(user_id, state)
            return added

    def _search(self, user_id: str, query: str, k: int, min_score: float
                ) -> list[ScoredMemory]:
        with self._lock:
            state = self._load(user_id)
            if state.index is None or state.index.ntotal == 0:
                return []
        vector = self._vectors([query])
        with self._lock:
            scores, keys = state.index.search(vector, min(k, state.index.ntotal))
            return [ScoredMemory(record=state.records[int(key)], score=float(score))
                    for score, key in zip(scores[0], keys[0], strict=True)
                    if key != -1 and float(score) >= min_score and int(key) in state.records]

    def _delete(self, user_id: str, memory_id: str) -> bool:
        with self._lock:
            state = self._load(user_id)
            key = next((k for k, r in state.records.items() if r.id == memory_id), None)
            if key is None:
                return False
            del state.records[key]
            state.index.remove_ids(np.array([key], dtype=np.int64))
            self._save(user_id, state)
            return True

    def _clear(self, user_id: str) -> int:
        with self._lock:
            state = self._load(user_id)
            count = len(state.records)
            self._users[user_id] = _UserIndex(index=None)
            folder = self._dir(user_id)
            for name in ("index.faiss", "memories.json"):
                (folder / name).unlink(missing_ok=True)
            return count

    # The async interface: FAISS and the embedding model are CPU-bound, run off the loop.
    async def add(self, user_id: str, texts: Sequence[str],
                  metadata: Mapping[str, Any] | None = None) -> list[MemoryRecord]:
        return await asyncio.to_thread(self._add, user_id, texts, metadata or {})

    async def search(self, user_id: str, query: str, *, k: int = 5,
                     min_score: float = 0.0) -> list[ScoredMemory]:
        if k < 1:
            raise ValueError("k must be at least 1")
        return await asyncio.to_thread(self._search, user_id, query, k, min_score)

    async def list(self, user_id: str, *, limit: int = 100,
                   offset: int = 0) -> list[MemoryRecord]:
        def rows() -> list[MemoryRecord]:
            with self._lock:
                records = sorted(self._load(user_id).records.values(),
                                 key=lambda r: r.created_at, reverse=True)
            return records[offset:offset + limit]

        return await asyncio.to_thread(rows)

    async def delete(self, user_id: str, memory_id: str) -> bool:
        return await asyncio.to_thread(self._delete, user_id, memory_id)

    async def clear(self, user_id: str) -> int:
        return await asyncio.to_thread(self._clear, user_id)
