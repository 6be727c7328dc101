"""Semantic memory in Redis vector search: the shared engine for several server replicas.

Each memory is a hash `<prefix>:<user key>:<memory id>` with its text, JSON metadata,
creation time and vector; one search index over the prefix has a VECTOR field (cosine)
and a TAG field with the user key. Every query filters on that tag and every key carries
it, so no call can reach another user's memories. The user key is a hash of the user id:
no escaping of tag syntax, no user names in key names.

The memory id is a hash of (user, text): the same fact stored twice lands on the same key,
which deduplicates without a read-modify-write race between replicas.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from redis.asyncio import Redis
from redis.commands.search.document import Document
from redis.commands.search.field import Field, NumericField, TagField, VectorField
from redis.commands.search.index_definition import IndexDefinition, IndexType
from redis.commands.search.query import Query
from redis.exceptions import ResponseError

from memory.semantic import MemoryRecord, ScoredMemory
from memory.vectors import unit_vectors

_ID = re.compile(r"[0-9a-f]{32}")
_FIELDS = ("text", "metadata", "created")


class RedisMemoryError(RuntimeError):
    pass


def user_key(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()[:40]


def _memory_id(user: str, text: str) -> str:
    return hashlib.sha256(f"{user}\0{text}".encode()).hexdigest()[:32]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _missing_index(error: ResponseError) -> bool:
    message = str(error).lower()
    return "unknown index name" in message or "no such index" in message


class RedisVectorMemory:
    """`SemanticMemory` on Redis 8 (or Redis Stack) with the search module.

    `redis` must speak RESP2 (redis-py's default). `algorithm` is "HNSW" (approximate,
    flat latency as memories grow) or "FLAT" (exact). The index is created on the first
    write, and again after the data is lost (FLUSHALL, a new Redis).
    """

    def __init__(self, redis: Redis, embeddings: Any, *, prefix: str = "parley:mem",
                 algorithm: str = "HNSW") -> None:
        if redis.connection_pool.connection_kwargs.get("protocol") not in (None, 2, "2"):
            raise ValueError("RedisVectorMemory needs a RESP2 client (protocol=2)")
        if algorithm not in ("HNSW", "FLAT"):
            raise ValueError(f"unknown vector algorithm {algorithm!r}: use 'HNSW' or 'FLAT'")
        self.redis = redis
        self.embeddings = embeddings
        self.prefix = prefix
        self.index_name = f"{prefix}:idx"
        self.algorithm = algorithm

    def _key(self, user: str, memory_id: str) -> str:
        return f"{self.prefix}:{user}:{memory_id}"

    async def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        # The embedding model is CPU-bound: off the event loop.
        return await asyncio.to_thread(unit_vectors, self.embeddings, texts)

    async def _index_dim(self) -> int | None:
        try:
            info = await self.redis.ft(self.index_name).info()
        except ResponseError as exc:
            if _missing_index(exc):
                return None
            raise
        for attribute in info["attributes"]:
            fields = [_text(v) if isinstance(v, bytes) else v for v in attribute]
            if "VECTOR" in fields and "dim" in fields:
                return int(fields[fields.index("dim") + 1])
        raise RedisMemoryError(f"index {self.index_name} has no vector field")

    async def _ensure_index(self, dim: int) -> None:
        existing = await self._index_dim()
        if existing is None:
            schema: list[Field] = [TagField("user"), NumericField("created", sortable=True),
                      VectorField("vec", self.algorithm, {"TYPE": "FLOAT32", "DIM": dim,
                                                          "DISTANCE_METRIC": "COSINE"})]
            try:
                await self.redis.ft(self.index_name).create_index(
                    schema, definition=IndexDefinition(prefix=[f"{self.prefix}:"],
                                                       index_type=IndexType.HASH))
            except ResponseError as exc:  # another replica created it first
                if "already exists" not in str(exc).lower():
                    raise
            return
        if existing != dim:
            raise RedisMemoryError(
                f"the memory index holds {existing}-dimensional vectors but the embedding "
                f"model gives {dim}: re-embed the memories or use another prefix")

    def _record(self, memory_id: str, fields: Mapping[str, Any]) -> MemoryRecord:
        micros = int(float(_text(fields["created"])))
        return MemoryRecord(id=memory_id, text=_text(fields["text"]),
                            created_at=datetime.fromtimestamp(micros / 1e6, UTC),
                            metadata=json.loads(_text(fields["metadata"])))

    def _from_doc(self, doc: Document) -> MemoryRecord:
        return self._record(doc.id.rsplit(":", 1)[1], {f: getattr(doc, f) for f in _FIELDS})

    async def add(self, user_id: str, texts: Sequence[str],
                  metadata: Mapping[str, Any] | None = None, *,
                  keys: Sequence[str] | None = None) -> list[MemoryRecord]:
        user = user_key(user_id)
        embed_as = {t.strip(): (k or t).strip()
                    for t, k in zip(texts, keys or texts, strict=True) if t and t.strip()}
        clean = list(embed_as)
        if not clean:
            return []
        ids = {text: _memory_id(user, text) for text in clean}
        async with self.redis.pipeline(transaction=False) as pipe:
            for text in clean:
                pipe.hmget(self._key(user, ids[text]), list(_FIELDS))
            stored = await pipe.execute()
        known = {text: self._record(ids[text], dict(zip(_FIELDS, row, strict=True)))
                 for text, row in zip(clean, stored, strict=True) if row[0] is not None}
        new = [text for text in clean if text not in known]
        if new:
            vectors = await self._vectors([embed_as[text] for text in new])
            await self._ensure_index(int(vectors.shape[1]))
            now = int(datetime.now(UTC).timestamp() * 1e6)
            meta = json.dumps(dict(metadata or {}))
            async with self.redis.pipeline(transaction=False) as pipe:
                for i, (text, vector) in enumerate(zip(new, vectors, strict=True)):
                    # +i microseconds: a batch lists newest-first in a stable order.
                    fields: dict[Any, Any] = {
                        "user": user, "text": text, "metadata": meta, "created": now + i,
                        "vec": vector.astype(np.float32).tobytes()}
                    pipe.hset(self._key(user, ids[text]), mapping=fields)
                    known[text] = self._record(ids[text], fields)
                await pipe.execute()
        # Texts repeated across the input map to one record, as in the FAISS store.
        return [known[t.strip()] for t in texts if t and t.strip()]

    async def search(self, user_id: str, query: str, *, k: int = 5,
                     min_score: float = 0.0) -> list[ScoredMemory]:
        if k < 1:
            raise ValueError("k must be at least 1")
        vector = (await self._vectors([query]))[0]
        q = (Query(f"(@user:{{{user_key(user_id)}}})=>[KNN $k @vec $vec AS dist]")
             .sort_by("dist").paging(0, k).return_fields(*_FIELDS, "dist").dialect(2))
        try:
            result = await self.redis.ft(self.index_name).search(
                q, {"vec": vector.astype(np.float32).tobytes(), "k": k})
        except ResponseError as exc:
            if _missing_index(exc):
                return []  # nothing stored yet, or the data was lost
            if "blob size" in str(exc):
                raise RedisMemoryError("the memory index was built with another embedding "
                                       "model: re-embed the memories") from exc
            raise
        found = [ScoredMemory(record=self._from_doc(doc), score=1.0 - float(doc.dist))
                 for doc in result.docs]  # cosine distance = 1 - cosine similarity
        return [m for m in found if m.score >= min_score]

    async def list(self, user_id: str, *, limit: int = 100,
                   offset: int = 0) -> list[MemoryRecord]:
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        if limit == 0:
            return []
        q = (Query(f"@user:{{{user_key(user_id)}}}").sort_by("created", asc=False)
             .paging(offset, limit).return_fields(*_FIELDS).dialect(2))
        try:
            result = await self.redis.ft(self.index_name).search(q)
        except ResponseError as exc:
            if _missing_index(exc):
                return []
            raise
        return [self._from_doc(doc) for doc in result.docs]

    async def delete(self, user_id: str, memory_id: str) -> bool:
        if not _ID.fullmatch(memory_id):
            return False  # not an id this store hands out
        return bool(await self.redis.delete(self._key(user_key(user_id), memory_id)))

    async def clear(self, user_id: str) -> int:
        removed = 0
        batch: list[Any] = []
        async for key in self.redis.scan_iter(match=f"{self.prefix}:{user_key(user_id)}:*",
                                              count=500):
            batch.append(key)
            if len(batch) >= 500:
                removed += await self.redis.delete(*batch)
                batch = []
        if batch:
            removed += await self.redis.delete(*batch)
        return removed
