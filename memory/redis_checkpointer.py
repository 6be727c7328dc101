"""A LangGraph checkpointer that keeps each thread's latest checkpoint in a plain Redis
string: LangGraph's own msgpack serialization, one GET (with the TTL refreshed) to read,
one SET (with the TTL) to write.

Short-term memory needs the latest state of a thread and nothing older (history keeps the
messages). `langgraph-checkpoint-redis`'s shallow saver stores the same thing as RedisJSON,
converting the state to JSON in Python first, a cost per turn this saver does not pay: it
hands the state to msgpack in C (docs/benchmarks.md).

Pending writes (a task's output not yet folded into a checkpoint: interrupts, errors,
finished tasks of an interrupted step) live in a hash beside the checkpoint, one field per
write, tagged with the checkpoint they belong to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from redis.asyncio import Redis

_SEP = b"\x00"


class RedisStringSaver(BaseCheckpointSaver[str]):
    """Async only (the server is async); the sync methods raise NotImplementedError."""

    def __init__(self, redis: Redis, *, ttl_seconds: int | None = None,
                 prefix: str = "parley:checkpoint", serde: SerializerProtocol | None = None
                 ) -> None:
        super().__init__(serde=serde)
        self.redis = redis
        self.ttl = ttl_seconds
        self.prefix = prefix

    def _key(self, thread_id: str, checkpoint_ns: str) -> str:
        return f"{self.prefix}:{thread_id}:{checkpoint_ns}"

    def _keys(self, config: RunnableConfig) -> tuple[str, str, str, str]:
        """thread id, namespace, the checkpoint's key and its writes' key."""
        thread_id = str(config["configurable"]["thread_id"])
        checkpoint_ns = str(config["configurable"].get("checkpoint_ns", ""))
        key = self._key(thread_id, checkpoint_ns)
        return thread_id, checkpoint_ns, key, f"{key}:writes"

    def _dump(self, value: Any) -> bytes:
        kind, data = self.serde.dumps_typed(value)
        return kind.encode() + _SEP + data

    def _load(self, raw: bytes) -> Any:
        kind, _, data = raw.partition(_SEP)
        return self.serde.loads_typed((kind.decode(), data))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id, checkpoint_ns, key, writes_key = self._keys(config)
        pipe = self.redis.pipeline(transaction=False)
        # Reading a thread keeps it alive: an active conversation never expires midway.
        pipe.getex(key, ex=self.ttl) if self.ttl else pipe.get(key)
        pipe.hgetall(writes_key)
        if self.ttl:
            pipe.expire(writes_key, self.ttl)
        raw, writes, *_ = await pipe.execute()
        if raw is None:
            return None
        record = self._load(raw)
        checkpoint: Checkpoint = record["checkpoint"]
        wanted = get_checkpoint_id(config)
        if wanted and wanted != checkpoint["id"]:
            return None  # only the latest is kept
        pending = []
        for field, value in writes.items():
            checkpoint_id, task_id, index = _write_field(field)
            if checkpoint_id == checkpoint["id"]:
                channel, write, task_path = self._load(value)
                # The order live execution applied them in, as LangGraph's savers keep.
                pending.append((writes_sort_key(task_path, task_id, int(index)),
                                (task_id, channel, write)))
        parent = record["parent"]
        return CheckpointTuple(
            config=_config(thread_id, checkpoint_ns, checkpoint["id"]),
            checkpoint=checkpoint,
            metadata=record["metadata"],
            parent_config=_config(thread_id, checkpoint_ns, parent) if parent else None,
            pending_writes=[write for _order, write in sorted(pending)],
        )

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint,
                   metadata: CheckpointMetadata, new_versions: ChannelVersions
                   ) -> RunnableConfig:
        thread_id, checkpoint_ns, key, writes_key = self._keys(config)
        parent = config["configurable"].get("checkpoint_id")
        record = {"checkpoint": checkpoint, "parent": parent, "thread_id": thread_id,
                  "checkpoint_ns": checkpoint_ns,
                  "metadata": get_checkpoint_metadata(config, metadata)}
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(key, self._dump(record), ex=self.ttl)
        pipe.hkeys(writes_key)
        _ok, fields = await pipe.execute()
        # Writes of older checkpoints are dead now. Those of the parent stay: a step's
        # writes can be saved just before the checkpoint that follows it.
        keep = {checkpoint["id"], parent}
        stale = [f for f in fields if _write_field(f)[0] not in keep]
        if stale:
            await self.redis.hdel(writes_key, *stale)
        return _config(thread_id, checkpoint_ns, checkpoint["id"])

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                          task_id: str, task_path: str = "") -> None:
        _thread_id, _checkpoint_ns, _key, key = self._keys(config)
        checkpoint_id = config["configurable"]["checkpoint_id"]
        pipe = self.redis.pipeline(transaction=False)
        for index, (channel, value) in enumerate(writes):
            position = WRITES_IDX_MAP.get(channel, index)
            field = f"{checkpoint_id}|{task_id}|{position}"
            blob = self._dump((channel, value, task_path))
            # As LangGraph's own savers do: a task's ordinary write is kept as first
            # saved (a retried task must not change it); special ones (errors,
            # interrupts: negative positions) are replaced.
            pipe.hset(key, field, blob) if position < 0 else pipe.hsetnx(key, field, blob)
        if self.ttl:
            pipe.expire(key, self.ttl)
        await pipe.execute()

    async def alist(self, config: RunnableConfig | None, *,
                    filter: dict[str, Any] | None = None,
                    before: RunnableConfig | None = None, limit: int | None = None
                    ) -> AsyncIterator[CheckpointTuple]:
        """The latest checkpoint of the thread in `config` (or of every thread), when it
        matches `filter` (metadata) and is older than `before`."""
        if config is not None:
            threads = [(str(config["configurable"]["thread_id"]),
                        str(config["configurable"].get("checkpoint_ns", "")))]
        else:  # every thread: their ids are in the records (ids may hold ':')
            threads = []
            async for key in self.redis.scan_iter(f"{_glob_escape(self.prefix)}:*"):
                raw = None if key.endswith(b":writes") else await self.redis.get(key)
                if isinstance(raw, bytes):
                    record = self._load(raw)
                    threads.append((record["thread_id"], record["checkpoint_ns"]))
        found = 0
        for thread_id, checkpoint_ns in threads:
            if limit is not None and found >= limit:
                return
            item = await self.aget_tuple({"configurable": {
                "thread_id": thread_id, "checkpoint_ns": checkpoint_ns}})
            if item is None:
                continue
            if filter and any(item.metadata.get(k) != v for k, v in filter.items()):
                continue
            if before and (item.checkpoint["id"]
                           >= str(before["configurable"].get("checkpoint_id", ""))):
                continue
            found += 1
            yield item

    async def adelete_thread(self, thread_id: str) -> None:
        """Every namespace of this thread. Thread ids may hold ':', so the key pattern
        also matches threads whose id starts with this one and a ':' ('a' and 'a:2'): the
        records name their thread, and only this one's go."""
        pattern = f"{_glob_escape(self.prefix)}:{_glob_escape(thread_id)}:*"
        keys = [k async for k in self.redis.scan_iter(pattern) if not k.endswith(b":writes")]
        records = await self.redis.mget(keys) if keys else []
        doomed = [key for key, raw in zip(keys, records, strict=True)
                  if isinstance(raw, bytes) and self._load(raw)["thread_id"] == thread_id]
        if doomed:
            await self.redis.delete(*doomed, *[k + b":writes" for k in doomed])


def _config(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns,
                             "checkpoint_id": checkpoint_id}}


def _write_field(field: bytes) -> tuple[str, str, str]:
    """A pending write's hash field: checkpoint id, task id, position."""
    checkpoint_id, task_id, position = field.decode().rsplit("|", 2)
    return checkpoint_id, task_id, position


def _glob_escape(text: str) -> str:
    """`text` matched literally in a Redis SCAN pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
