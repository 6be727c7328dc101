"""A LangGraph checkpointer that keeps each thread's latest checkpoint in a plain Redis
string: LangGraph's own msgpack serialization, one GET (with the TTL refreshed) to read,
one SET (with the TTL) to write.

Short-term memory needs the latest state of a thread (history keeps the messages).
`langgraph-checkpoint-redis`'s shallow saver stores the same thing as RedisJSON,
converting the state to JSON in Python first, a cost per turn this saver does not pay: it
hands the state to msgpack in C (docs/benchmarks.md).

With `keep` > 1 the thread's `keep - 1` checkpoints before the latest stay too, for the
Agent Protocol's history and branches (edit an earlier message, regenerate an answer):
they sit in a hash beside the latest, their ids newest first in a list, and a write moves
the latest into the hash and drops the oldest in one server-side script (one round trip,
as with `keep` = 1). Reading the latest stays one GET. What that costs in Redis memory per
thread is measured in docs/agent-protocol.md.

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
_SIDE_KEYS = (b":writes", b":history", b":order")  # beside a thread's latest checkpoint

# KEYS: latest, history, order, writes. ARGV: the new record, its id, keep, ttl (0: none).
# The latest goes into the history under the id at the head of the order list (which
# names every kept checkpoint, newest first), the new one becomes the latest, and the
# oldest past `keep` leave with their pending writes. Writes of the new checkpoint's
# parent stay whatever happens: a step's writes can be saved just before the checkpoint
# that follows it.
_PUT = """
local previous = redis.call('GET', KEYS[1])
local previous_id = redis.call('LINDEX', KEYS[3], 0)
if previous and previous_id then
  redis.call('HSET', KEYS[2], previous_id, previous)
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('LPUSH', KEYS[3], ARGV[2])
local keep = tonumber(ARGV[3])
local dropped = {}
while redis.call('LLEN', KEYS[3]) > keep do
  local gone = redis.call('RPOP', KEYS[3])
  redis.call('HDEL', KEYS[2], gone)
  dropped[gone] = true
end
if next(dropped) ~= nil then
  for _, field in ipairs(redis.call('HKEYS', KEYS[4])) do
    local id = string.match(field, '^([^|]*)|')
    if id and dropped[id] and id ~= ARGV[5] then
      redis.call('HDEL', KEYS[4], field)
    end
  end
end
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ttl) end
end
return 1
"""

# KEYS: latest, history, order, writes. ARGV: the id to make the latest again. Newer
# checkpoints go, with their writes (multitask "rollback": a cancelled run leaves no
# trace). Returns 0 when that checkpoint is not kept.
_REWIND = """
local ids = redis.call('LRANGE', KEYS[3], 0, -1)
local at = nil
for i, id in ipairs(ids) do
  if id == ARGV[1] then at = i break end
end
if not at then return 0 end
if at == 1 then return 1 end
local record = redis.call('HGET', KEYS[2], ARGV[1])
if not record then return 0 end
local dropped = {}
for i = 1, at - 1 do
  dropped[ids[i]] = true
  redis.call('HDEL', KEYS[2], ids[i])
  redis.call('LPOP', KEYS[3])
end
redis.call('HDEL', KEYS[2], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
redis.call('SET', KEYS[1], record)
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
for _, field in ipairs(redis.call('HKEYS', KEYS[4])) do
  local id = string.match(field, '^([^|]*)|')
  if id and dropped[id] then redis.call('HDEL', KEYS[4], field) end
end
return 1
"""


# Set in a run's `configurable` by a caller that has just named the thread (an id of its
# own making): nothing can be stored under it yet, so the run's first read is no round trip.
# LangGraph leaves keys that begin with "__" out of a checkpoint's metadata.
NO_CHECKPOINT_YET = "__parley_no_checkpoint_yet__"


class RedisStringSaver(BaseCheckpointSaver[str]):
    """Async only (the server is async); the sync methods raise NotImplementedError."""

    def __init__(self, redis: Redis, *, ttl_seconds: int | None = None,
                 prefix: str = "parley:checkpoint", serde: SerializerProtocol | None = None,
                 keep: int = 1) -> None:
        """`keep`: how many of a thread's checkpoints stay, the latest included."""
        super().__init__(serde=serde)
        if keep < 1:
            raise ValueError("keep must be at least 1: the latest checkpoint is the thread")
        self.redis = redis
        self.ttl = ttl_seconds
        self.prefix = prefix
        self.keep = keep
        self._put_script = redis.register_script(_PUT) if keep > 1 else None
        self._rewind_script = redis.register_script(_REWIND) if keep > 1 else None

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
        wanted = get_checkpoint_id(config)
        if config["configurable"].get(NO_CHECKPOINT_YET) and not wanted:
            return None
        pipe = self.redis.pipeline(transaction=False)
        # Reading a thread keeps it alive: an active conversation never expires midway.
        pipe.getex(key, ex=self.ttl) if self.ttl else pipe.get(key)
        pipe.hgetall(writes_key)
        older_wanted = self.keep > 1 and bool(wanted)
        if older_wanted:
            pipe.hget(f"{key}:history", wanted or "")
        if self.ttl:
            pipe.expire(writes_key, self.ttl)
            if self.keep > 1:
                pipe.expire(f"{key}:history", self.ttl)
                pipe.expire(f"{key}:order", self.ttl)
        raw, writes, *rest = await pipe.execute()
        if raw is None:
            return None
        record = self._load(raw)
        if wanted and wanted != record["checkpoint"]["id"]:
            older = rest[0] if older_wanted else None
            if older is None:
                return None  # not kept
            record = self._load(older)
        return self._tuple(thread_id, checkpoint_ns, record, writes)

    def _tuple(self, thread_id: str, checkpoint_ns: str, record: dict[str, Any],
               writes: dict[bytes, bytes]) -> CheckpointTuple:
        checkpoint: Checkpoint = record["checkpoint"]
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
        if self._put_script is not None:
            await self._put_script(
                keys=[key, f"{key}:history", f"{key}:order", writes_key],
                args=[self._dump(record), checkpoint["id"], self.keep, self.ttl or 0,
                      parent or ""])
            return _config(thread_id, checkpoint_ns, checkpoint["id"])
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
        """The kept checkpoints of the thread in `config`, newest first (or the latest of
        every thread), when they match `filter` (metadata) and are older than `before`."""
        if config is not None:
            threads = [(str(config["configurable"]["thread_id"]),
                        str(config["configurable"].get("checkpoint_ns", "")))]
        else:  # every thread: their ids are in the records (ids may hold ':')
            threads = []
            async for key in self.redis.scan_iter(f"{_glob_escape(self.prefix)}:*"):
                raw = None if key.endswith(_SIDE_KEYS) else await self.redis.get(key)
                if isinstance(raw, bytes):
                    record = self._load(raw)
                    threads.append((record["thread_id"], record["checkpoint_ns"]))
        bound = str(before["configurable"].get("checkpoint_id", "")) if before else None
        found = 0
        for thread_id, checkpoint_ns in threads:
            every = config is not None and self.keep > 1
            async for item in self._kept(thread_id, checkpoint_ns, every=every):
                if limit is not None and found >= limit:
                    return
                if filter and any(item.metadata.get(k) != v for k, v in filter.items()):
                    continue
                if bound is not None and item.checkpoint["id"] >= bound:
                    continue
                found += 1
                yield item

    async def _kept(self, thread_id: str, checkpoint_ns: str, *, every: bool
                    ) -> AsyncIterator[CheckpointTuple]:
        """The thread's latest checkpoint, then (`every`) the older ones kept, newest
        first."""
        key = self._key(thread_id, checkpoint_ns)
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(key)
        pipe.hgetall(f"{key}:writes")
        pipe.lrange(f"{key}:order", 1, -1)
        pipe.hgetall(f"{key}:history")
        raw, writes, older, history = await pipe.execute()
        if raw is None:
            return
        yield self._tuple(thread_id, checkpoint_ns, self._load(raw), writes)
        if not every:
            return
        for checkpoint_id in older:
            if (stored := history.get(checkpoint_id)) is not None:
                yield self._tuple(thread_id, checkpoint_ns, self._load(stored), writes)

    async def alatest_id(self, config: RunnableConfig) -> str | None:
        """The id of the thread's latest checkpoint, without reading it (`keep` > 1; with
        one checkpoint kept there is nothing to go back to, and this answers None)."""
        if self.keep == 1:
            return None
        _thread_id, _checkpoint_ns, key, _writes_key = self._keys(config)
        latest = await self.redis.lindex(f"{key}:order", 0)
        if latest is None:
            return None
        return latest.decode() if isinstance(latest, bytes) else str(latest)

    async def arewind(self, config: RunnableConfig) -> bool:
        """Make the kept checkpoint `config` names the thread's latest again, forgetting
        the newer ones. False when it is not kept (then nothing changes)."""
        _thread_id, _checkpoint_ns, key, writes_key = self._keys(config)
        wanted = get_checkpoint_id(config)
        if self._rewind_script is None or not wanted:
            return False
        done = await self._rewind_script(
            keys=[key, f"{key}:history", f"{key}:order", writes_key], args=[wanted])
        return bool(done)

    async def adelete_thread(self, thread_id: str) -> None:
        """Every namespace of this thread. Thread ids may hold ':', so the key pattern
        also matches threads whose id starts with this one and a ':' ('a' and 'a:2'): the
        records name their thread, and only this one's go."""
        pattern = f"{_glob_escape(self.prefix)}:{_glob_escape(thread_id)}:*"
        keys = [k async for k in self.redis.scan_iter(pattern) if not k.endswith(_SIDE_KEYS)]
        records = await self.redis.mget(keys) if keys else []
        doomed = [key for key, raw in zip(keys, records, strict=True)
                  if isinstance(raw, bytes) and self._load(raw)["thread_id"] == thread_id]
        if doomed:
            await self.redis.delete(*doomed, *[k + side for k in doomed for side in _SIDE_KEYS])


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
