"""Semantic memory in Redis vector search: the shared engine for several server replicas.

Each memory is a hash `<prefix>:<user key>:<memory id>` with its text, JSON metadata,
creation time and vector; one search index over the prefix has a VECTOR field (cosine)
and a TAG field with the user key. Every query filters on that tag and every key carries
it, so no call can reach another user's memories. The user key is a hash of the user id:
no escaping of tag syntax, no user names in key names.

The memory id is a hash of (user, text): the same fact stored twice lands on the same key,
which deduplicates without a read-modify-write race between replicas.

Hybrid search: beside the vector, each memory's lexical terms (memory/terms.py, the FAISS
engine's) sit in a NOSTEM text field of the same index, and the user's own BM25 statistics
(memories, total length, document frequency per term) in a hash `<prefix>-lex:<user key>`,
kept by Lua scripts that add or delete a memory and its counts in one step. RediSearch finds
the memories sharing a term with the question that is not common among the user's memories
(memory/lexical.py's `rare_first`; its own BM25 picks the best `pool` of them); they are
rescored with the user's statistics by the FAISS engine's formula, in its order (the
scripts and the rescoring: memory/redis_lexical.py), and ranked by memory/ranking.py, so
both engines rank the same candidates alike.
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
from redis.commands.search.field import Field, NumericField, TagField, TextField, VectorField
from redis.commands.search.index_definition import IndexDefinition, IndexType
from redis.commands.search.query import Query
from redis.exceptions import ResponseError

from memory.fusion import About, Fusion, SearchMode
from memory.lexical import indexed_text, rare_first
from memory.ranking import ranked
from memory.redis_lexical import ADD, DELETE, as_text, lexical_stats, rescored
from memory.semantic import (
    MemoryRecord,
    Metadata,
    ScoredMemory,
    When,
    each_metadata,
    each_time,
    model_id,
    speaker_of,
)
from memory.terms import terms
from memory.vectors import unit_vectors

_ID = re.compile(r"[0-9a-f]{32}")
_FIELDS = ("text", "metadata", "created")

# Gives a memory another model's vector, if it is still there: KEYS memory, models;
# ARGV the model, the vector.
_REEMBED = """
local old = redis.call('HGET', KEYS[1], 'model')
if not old then return 0 end
redis.call('HSET', KEYS[1], 'vec', ARGV[2], 'model', ARGV[1])
if redis.call('HINCRBY', KEYS[2], old, -1) <= 0 then redis.call('HDEL', KEYS[2], old) end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
return 1
"""


class RedisMemoryError(RuntimeError):
    pass


def user_key(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()[:40]


def _memory_id(user: str, text: str) -> str:
    return hashlib.sha256(f"{user}\0{text}".encode()).hexdigest()[:32]


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
                 algorithm: str = "HNSW", fusion: Fusion | None = None) -> None:
        if redis.connection_pool.connection_kwargs.get("protocol") not in (None, 2, "2"):
            raise ValueError("RedisVectorMemory needs a RESP2 client (protocol=2)")
        if algorithm not in ("HNSW", "FLAT"):
            raise ValueError(f"unknown vector algorithm {algorithm!r}: use 'HNSW' or 'FLAT'")
        self.redis = redis
        self.embeddings = embeddings
        self.prefix = prefix
        self.index_name = f"{prefix}:idx"
        self.algorithm = algorithm
        self.fusion = fusion or Fusion()
        self.model = model_id(embeddings)
        self._add_script = redis.register_script(ADD)
        self._delete_script = redis.register_script(DELETE)
        self._reembed_script = redis.register_script(_REEMBED)
        self._reembedding: dict[str, asyncio.Task[int]] = {}  # user key -> background task

    def _stats_key(self, user: str) -> str:
        # Outside `<prefix>:`, so the search index does not take it for a memory.
        return f"{self.prefix}-lex:{user}"

    def _speakers_key(self, user: str) -> str:
        return f"{self.prefix}-speakers:{user}"

    def _models_key(self, user: str) -> str:
        return f"{self.prefix}-models:{user}"

    def _user_keys(self, user: str) -> list[str]:
        """What the add and delete scripts keep beside a memory."""
        return [self._stats_key(user), self._speakers_key(user), self._models_key(user)]

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
        dim = None
        has_terms = False
        for attribute in info["attributes"]:
            fields = [as_text(v) if isinstance(v, bytes) else v for v in attribute]
            if "VECTOR" in fields and "dim" in fields:
                dim = int(fields[fields.index("dim") + 1])
            has_terms = has_terms or "terms" in fields
        if dim is None:
            raise RedisMemoryError(f"index {self.index_name} has no vector field")
        if not has_terms:  # an index from before hybrid search: give it the text field
            try:
                await self.redis.execute_command("FT.ALTER", self.index_name, "SCHEMA", "ADD",
                                                 "terms", "TEXT", "NOSTEM")
            except ResponseError as exc:  # another replica altered it first
                if "duplicate" not in str(exc).lower():
                    raise
        return dim

    async def _ensure_index(self, dim: int) -> None:
        existing = await self._index_dim()
        if existing is None:
            schema: list[Field] = [TagField("user"), NumericField("created", sortable=True),
                                   TextField("terms", no_stem=True),
                                   VectorField("vec", self.algorithm,
                                               {"TYPE": "FLOAT32", "DIM": dim,
                                                "DISTANCE_METRIC": "COSINE"})]
            try:
                # No stop words of RediSearch's own: the terms arrive without ours already.
                await self.redis.ft(self.index_name).create_index(
                    schema, stopwords=[],
                    definition=IndexDefinition(prefix=[f"{self.prefix}:"],
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
        micros = int(float(as_text(fields["created"])))
        return MemoryRecord(id=memory_id, text=as_text(fields["text"]),
                            created_at=datetime.fromtimestamp(micros / 1e6, UTC),
                            metadata=json.loads(as_text(fields["metadata"])))

    def _from_doc(self, doc: Document) -> MemoryRecord:
        return self._record(doc.id.rsplit(":", 1)[1], {f: getattr(doc, f) for f in _FIELDS})

    async def add(self, user_id: str, texts: Sequence[str],
                  metadata: Metadata | None = None, *,
                  keys: Sequence[str] | None = None,
                  created_at: When = None) -> list[MemoryRecord]:
        user = user_key(user_id)
        now = datetime.now(UTC)
        extra = {t.strip(): (m, w) for t, m, w in zip(
            texts, each_metadata(metadata, len(texts)), each_time(created_at, len(texts), now),
            strict=True) if t and t.strip()}
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
            async with self.redis.pipeline(transaction=False) as pipe:
                for i, (text, vector) in enumerate(zip(new, vectors, strict=True)):
                    meta, when = extra[text]
                    # +i microseconds: a batch lists newest-first in a stable order.
                    created = int(when.timestamp() * 1e6) + (i if when is now else 0)
                    speaker = speaker_of(meta) or ""
                    words = terms(indexed_text(text, embed_as[text], speaker))
                    fields: dict[str, Any] = {
                        "user": user, "text": text, "metadata": json.dumps(meta),
                        "created": created, "terms": " ".join(words), "speaker": speaker,
                        "model": self.model, "vec": vector.astype(np.float32).tobytes()}
                    if embed_as[text] != text:
                        fields["embedded"] = embed_as[text]
                    pairs = [part for item in fields.items() for part in item]
                    await self._add_script(
                        keys=[self._key(user, ids[text]), *self._user_keys(user)],
                        args=[len(fields), *pairs, len(words), speaker, self.model,
                              *set(words)],
                        client=pipe)
                    known[text] = self._record(ids[text], fields)
                await pipe.execute()
        # Texts repeated across the input map to one record, as in the FAISS store.
        return [known[t.strip()] for t in texts if t and t.strip()]

    async def search(self, user_id: str, query: str, *, k: int = 5,
                     min_score: float = 0.0, mode: SearchMode = "hybrid",
                     now: datetime | None = None) -> list[ScoredMemory]:
        if k < 1:
            raise ValueError("k must be at least 1")
        user = user_key(user_id)
        pool = self.fusion.pool(k)
        async with self.redis.pipeline(transaction=False) as pipe:  # one round trip
            pipe.hkeys(self._models_key(user))
            pipe.hkeys(self._speakers_key(user))
            models, speakers = await pipe.execute()
        skip_dense = mode == "lexical"
        if not skip_dense and any(as_text(model) != self.model for model in models):
            # Some vectors are another model's: words answer alone while they are redone,
            # if this model's fit the index (its vector field has one size).
            size = int((await self._vectors([query])).shape[1])
            index_size = await self._index_dim()
            if index_size is not None and index_size != size:
                raise RedisMemoryError(
                    f"the memory index was built with another embedding model "
                    f"({index_size}-dimensional vectors; this one gives {size}): re-embed "
                    "the memories or use another prefix")
            self._start_reembedding(user)
            mode = "lexical" if mode == "dense" else mode
            skip_dense = True
        try:
            dense = [] if skip_dense else await self._dense(user, query, pool)
            lexical = [] if mode == "dense" else await self._lexical(user, query, pool)
        except ResponseError as exc:
            if _missing_index(exc):
                return []  # nothing stored yet, or the data was lost
            if "blob size" in str(exc):
                raise RedisMemoryError("the memory index was built with another embedding "
                                       "model: re-embed the memories") from exc
            raise
        records = {doc_id: record for doc_id, (record, _score) in (*dense, *lexical)}
        about = {doc_id: About(r.text, r.created_at, speaker_of(r.metadata))
                 for doc_id, r in records.items()}
        return ranked(query, [(d, score) for d, (_r, score) in dense],
                      [(d, score) for d, (_r, score) in lexical], records=records,
                      about=about, speakers=[as_text(s) for s in speakers], now=now,
                      mode=mode, fusion=self.fusion, k=k, min_score=min_score)

    def _start_reembedding(self, user: str) -> None:
        task = self._reembedding.get(user)
        if task is None or task.done():
            self._reembedding[user] = asyncio.create_task(self._reembed_user(user))

    async def _reembed_user(self, user: str, batch: int = 64) -> int:
        """Gives every memory of the user this model's vector (embedding its key), one
        batch at a time; a memory deleted meanwhile is skipped by the script."""
        done = 0
        keys: list[Any] = []
        async for key in self.redis.scan_iter(match=f"{self.prefix}:{user}:*", count=500):
            keys.append(key)
        for start in range(0, len(keys), batch):
            chunk = keys[start:start + batch]
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in chunk:
                    pipe.hmget(key, ["model", "text", "embedded"])
                rows = await pipe.execute()
            todo = [(key, as_text(row[2] or row[1])) for key, row in zip(chunk, rows, strict=True)
                    if row[0] is not None and as_text(row[0]) != self.model and row[1]]
            if not todo:
                continue
            vectors = await self._vectors([text for _key, text in todo])
            async with self.redis.pipeline(transaction=False) as pipe:
                for (key, _), vector in zip(todo, vectors, strict=True):
                    await self._reembed_script(
                        keys=[key, self._models_key(user)],
                        args=[self.model, vector.astype(np.float32).tobytes()], client=pipe)
                done += sum(await pipe.execute())
        return done

    async def wait_for_reembedding(self) -> None:
        """Waits for the background re-embedding tasks (tests, shutdown)."""
        tasks = [t for t in self._reembedding.values() if not t.done()]
        if tasks:
            await asyncio.gather(*tasks)

    async def _dense(self, user: str, query: str, pool: int
                     ) -> list[tuple[str, tuple[MemoryRecord, float]]]:
        vector = (await self._vectors([query]))[0]
        q = (Query(f"(@user:{{{user}}})=>[KNN $k @vec $vec AS dist]")
             .sort_by("dist").paging(0, pool).return_fields(*_FIELDS, "dist").dialect(2))
        result = await self.redis.ft(self.index_name).search(
            q, {"vec": vector.astype(np.float32).tobytes(), "k": pool})
        # Cosine distance = 1 - cosine similarity.
        return [(doc.id, (self._from_doc(doc), 1.0 - float(doc.dist))) for doc in result.docs]

    async def _lexical(self, user: str, query: str, pool: int
                       ) -> list[tuple[str, tuple[MemoryRecord, float]]]:
        """Memories sharing a term with the query, scored by BM25 over the user's own
        statistics, best first: the candidates and scores the FAISS engine finds. The
        statistics come first, so that only the terms that choose candidates there
        (`rare_first`) are looked up here, not a common word's postings."""
        wanted = list(dict.fromkeys(terms(query)))
        if not wanted:
            return []
        n_docs, average, df = lexical_stats(
            await self.redis.hmget(self._stats_key(user), ["#docs", "#length", *wanted]),
            wanted)
        rare, common = rare_first(wanted, df, n_docs)
        if not rare:
            return []
        q = (Query(f"@user:{{{user}}} @terms:({'|'.join(rare)})").scorer("BM25STD")
             .paging(0, pool).return_fields(*_FIELDS, "terms").dialect(2))
        result = await self.redis.ft(self.index_name).search(q)
        return [(doc.id, (self._from_doc(doc), score))
                for doc, score in rescored(result.docs, rare, common, n_docs, average, df)]

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
        user = user_key(user_id)
        return bool(await self._delete_script(keys=[self._key(user, memory_id),
                                                    *self._user_keys(user)]))

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
        await self.redis.delete(*self._user_keys(user_key(user_id)))
        return removed
