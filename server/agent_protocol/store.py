"""Threads and runs as the Agent Protocol shows them, kept in Redis under their owner.

A thread's state lives in the checkpointer, its transcript in the history service; what
is kept here is what the protocol adds: when it was made and last used, its metadata
(`graph_id` among them, which clients search by), its status, and the runs made on it.
Every key holds the user id, so another user's id finds nothing (404). Records expire
with the thread (`ttl`, refreshed on use), as its checkpoint does.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
RunStatus = Literal["pending", "running", "success", "error", "timeout", "interrupted"]
ACTIVE: tuple[RunStatus, ...] = ("pending", "running")
RAN_BY = ("graph_id", "assistant_id")  # metadata a run sets on its thread


# Making a thread known or marking it used, in one command: the ten it takes (created,
# status, stamps, metadata, both indexes, their expiry) cost the client as many packs and
# parses, which a chat turn pays every time (docs/benchmarks.md).
# KEYS: the thread, the created index, the updated index. ARGV: stamp, ms, ttl, thread id,
# status ("" leaves it), "1" when a run starts, metadata JSON, then RAN_BY field/values.
_TOUCH = """
local key = KEYS[1]
redis.call('HSETNX', key, 'created_at', ARGV[1])
redis.call('HSETNX', key, 'status', 'idle')
local fields = {'updated_at', ARGV[1]}
for i = 8, #ARGV - 1, 2 do
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
end
redis.call('HSET', key, unpack(fields))
if ARGV[5] ~= '' then redis.call('HSET', key, 'status', ARGV[5]) end
if ARGV[6] == '1' then redis.call('HINCRBY', key, 'runs', 1) end
redis.call('HSETNX', key, 'metadata', ARGV[7])
redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[3], ARGV[3])
redis.call('EXPIRE', key, ARGV[3])
return 1
"""


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


def _ms() -> int:
    return int(time.time() * 1000)


@dataclass
class ThreadRecord:
    thread_id: str
    created_at: str
    updated_at: str
    metadata: dict[str, Any] = field(default_factory=dict)
    status: ThreadStatus = "idle"
    runs: int = 0  # runs started on it; 0: a new thread, nothing to restore

    @classmethod
    def load(cls, thread_id: str, raw: Mapping[bytes, bytes]) -> ThreadRecord:
        # The agent that ran last names the thread, as on LangGraph Server.
        ran = {k: raw[k.encode()].decode() for k in RAN_BY if k.encode() in raw}
        return cls(thread_id=thread_id, created_at=raw[b"created_at"].decode(),
                   updated_at=raw.get(b"updated_at", raw[b"created_at"]).decode(),
                   metadata={**json.loads(raw.get(b"metadata", b"{}")), **ran},
                   status=raw.get(b"status", b"idle").decode(),  # type: ignore[arg-type]
                   runs=int(raw.get(b"runs", b"0")))


@dataclass
class RunRecord:
    run_id: str
    thread_id: str | None  # None: a stateless run
    assistant_id: str
    owner: str
    created_at: str
    updated_at: str
    status: RunStatus = "pending"
    metadata: dict[str, Any] = field(default_factory=dict)
    multitask_strategy: str = "reject"
    kwargs: dict[str, Any] = field(default_factory=dict)

    def fields(self) -> dict[str, str]:
        return {"thread_id": self.thread_id or "", "assistant_id": self.assistant_id,
                "owner": self.owner, "created_at": self.created_at,
                "updated_at": self.updated_at, "status": self.status,
                "metadata": json.dumps(self.metadata),
                "multitask_strategy": self.multitask_strategy,
                "kwargs": json.dumps(self.kwargs, default=str)}

    @classmethod
    def load(cls, run_id: str, raw: Mapping[bytes, bytes]) -> RunRecord:
        text = {k.decode(): v.decode() for k, v in raw.items()}
        return cls(run_id=run_id, thread_id=text["thread_id"] or None,
                   assistant_id=text["assistant_id"], owner=text["owner"],
                   created_at=text["created_at"], updated_at=text["updated_at"],
                   status=text["status"],  # type: ignore[arg-type]
                   metadata=json.loads(text["metadata"]),
                   multitask_strategy=text["multitask_strategy"],
                   kwargs=json.loads(text["kwargs"]))

    def public(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "thread_id": self.thread_id,
                "assistant_id": self.assistant_id, "created_at": self.created_at,
                "updated_at": self.updated_at, "status": self.status,
                "metadata": self.metadata, "multitask_strategy": self.multitask_strategy,
                "kwargs": self.kwargs}


class Store:
    def __init__(self, redis: Any, *, ttl: int, prefix: str = "parley:ap") -> None:
        self.redis = redis
        self.ttl = ttl
        self.prefix = prefix

    # keys
    def thread_key(self, user: str, thread_id: str) -> str:
        return f"{self.prefix}:thread:{user}:{thread_id}"

    def _index(self, user: str, order: str) -> str:
        return f"{self.prefix}:threads:{user}:{order}"

    def _run_key(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}"

    def _runs_of(self, user: str, thread_id: str) -> str:
        return f"{self.prefix}:runs:{user}:{thread_id}"

    # threads
    async def create_thread(self, user: str, thread_id: str, metadata: Mapping[str, Any]
                            ) -> ThreadRecord | None:
        """A new thread; None when the user has one of that id already."""
        stamp = now_iso()
        key = self.thread_key(user, thread_id)
        created = await self.redis.hsetnx(key, "created_at", stamp)
        if not created:
            return None
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(key, mapping={"updated_at": stamp, "metadata": json.dumps(dict(metadata)),
                                "status": "idle", "runs": 0})
        self._index_thread(pipe, user, thread_id, created=True)
        pipe.expire(key, self.ttl)
        await pipe.execute()
        return ThreadRecord(thread_id, stamp, stamp, dict(metadata))

    def _index_thread(self, pipe: Any, user: str, thread_id: str, *, created: bool) -> None:
        now = _ms()
        if created:
            pipe.zadd(self._index(user, "created"), {thread_id: now}, nx=True)
        pipe.zadd(self._index(user, "updated"), {thread_id: now})
        for order in ("created", "updated"):
            pipe.expire(self._index(user, order), self.ttl)

    async def touch_thread(self, user: str, thread_id: str, *,
                           metadata: Mapping[str, Any], status: ThreadStatus | None = None
                           ) -> None:
        """Make the thread known (a chat thread, or one a run creates) or mark it used:
        `metadata` is set only on a thread that has none. One round trip."""
        keys, args = self._touch_parts(user, thread_id, metadata, status, run_started=False)
        await self.redis.eval(_TOUCH, len(keys), *keys, *args)

    def queue_touch(self, pipe: Any, user: str, thread_id: str, *,
                    metadata: Mapping[str, Any], status: ThreadStatus | None = None,
                    run_started: bool = False) -> None:
        """`touch_thread` queued on a pipeline. Both send EVAL with the script's text, not
        a registered script: a pipeline given one first asks Redis whether it has it, a
        round trip of its own."""
        keys, args = self._touch_parts(user, thread_id, metadata, status, run_started)
        pipe.eval(_TOUCH, len(keys), *keys, *args)

    def _touch_parts(self, user: str, thread_id: str, metadata: Mapping[str, Any],
                     status: ThreadStatus | None, run_started: bool
                     ) -> tuple[list[str], list[Any]]:
        ran_by = [v for k in RAN_BY if k in metadata for v in (k, str(metadata[k]))]
        own = json.dumps({k: v for k, v in metadata.items() if k not in RAN_BY})
        keys = [self.thread_key(user, thread_id), self._index(user, "created"),
                self._index(user, "updated")]
        args = [now_iso(), _ms(), self.ttl, thread_id, status or "",
                "1" if run_started else "0", own, *ran_by]
        return keys, args

    async def get_thread(self, user: str, thread_id: str) -> ThreadRecord | None:
        raw = await self.redis.hgetall(self.thread_key(user, thread_id))
        return ThreadRecord.load(thread_id, raw) if raw.get(b"created_at") else None

    async def patch_thread(self, user: str, thread_id: str, metadata: Mapping[str, Any]
                           ) -> ThreadRecord | None:
        thread = await self.get_thread(user, thread_id)
        if thread is None:
            return None
        thread.metadata = {**thread.metadata, **metadata}
        thread.updated_at = now_iso()
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.thread_key(user, thread_id),
                  mapping={"metadata": json.dumps(thread.metadata),
                           "updated_at": thread.updated_at})
        self._index_thread(pipe, user, thread_id, created=False)
        await pipe.execute()
        return thread

    def queue_status(self, pipe: Any, user: str, thread_id: str, status: ThreadStatus
                     ) -> None:
        key = self.thread_key(user, thread_id)
        pipe.hset(key, mapping={"status": status, "updated_at": now_iso()})
        pipe.expire(key, self.ttl)

    async def search_threads(self, user: str, *, metadata: Mapping[str, Any] | None = None,
                             status: str | None = None, ids: Sequence[str] | None = None,
                             sort_by: str = "created_at", descending: bool = True,
                             limit: int = 10, offset: int = 0) -> list[ThreadRecord]:
        order = "updated" if sort_by == "updated_at" else "created"
        found = await self.redis.zrange(self._index(user, order), 0, -1, desc=descending)
        wanted = set(ids) if ids is not None else None
        thread_ids = [t.decode() for t in found]
        thread_ids = [t for t in thread_ids if wanted is None or t in wanted]
        pipe = self.redis.pipeline(transaction=False)
        for thread_id in thread_ids:
            pipe.hgetall(self.thread_key(user, thread_id))
        records = await pipe.execute() if thread_ids else []
        threads, expired = [], []
        for thread_id, raw in zip(thread_ids, records, strict=True):
            if not raw.get(b"created_at"):
                expired.append(thread_id)
                continue
            thread = ThreadRecord.load(thread_id, raw)
            if status is not None and thread.status != status:
                continue
            if metadata and any(thread.metadata.get(k) != v for k, v in metadata.items()):
                continue
            threads.append(thread)
        if expired:  # records that expired leave the index as they are met
            pipe = self.redis.pipeline(transaction=False)
            for order_name in ("created", "updated"):
                pipe.zrem(self._index(user, order_name), *expired)
            await pipe.execute()
        if sort_by in ("thread_id", "status"):
            threads.sort(key=lambda t: getattr(t, sort_by), reverse=descending)
        return threads[offset:offset + limit]

    async def delete_thread(self, user: str, thread_id: str) -> list[str]:
        """The thread's record and its runs' records; the ids of those runs."""
        runs_key = self._runs_of(user, thread_id)
        run_ids = [r.decode() for r in await self.redis.zrange(runs_key, 0, -1)]
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(self.thread_key(user, thread_id), runs_key,
                    *[self._run_key(r) for r in run_ids])
        for order in ("created", "updated"):
            pipe.zrem(self._index(user, order), thread_id)
        await pipe.execute()
        return run_ids

    # runs
    def put_run(self, pipe: Any, run: RunRecord) -> None:
        """Queue the run's record on `pipe` (the caller sends it with its other writes)."""
        key = self._run_key(run.run_id)
        pipe.hset(key, mapping=run.fields())
        pipe.expire(key, self.ttl)
        if run.thread_id is not None:
            runs_key = self._runs_of(run.owner, run.thread_id)
            pipe.zadd(runs_key, {run.run_id: _ms()})
            pipe.expire(runs_key, self.ttl)

    def set_run_status(self, pipe: Any, run_id: str, status: RunStatus) -> None:
        pipe.hset(self._run_key(run_id), mapping={"status": status, "updated_at": now_iso()})

    async def get_run(self, user: str, run_id: str) -> RunRecord | None:
        raw = await self.redis.hgetall(self._run_key(run_id))
        if not raw or raw.get(b"owner", b"").decode() != user:
            return None
        return RunRecord.load(run_id, raw)

    async def list_runs(self, user: str, thread_id: str, *, limit: int = 10, offset: int = 0,
                        status: str | None = None) -> list[RunRecord]:
        run_ids = [r.decode() for r in
                   await self.redis.zrange(self._runs_of(user, thread_id), 0, -1, desc=True)]
        pipe = self.redis.pipeline(transaction=False)
        for run_id in run_ids:
            pipe.hgetall(self._run_key(run_id))
        records = await pipe.execute() if run_ids else []
        runs = [RunRecord.load(r, raw) for r, raw in zip(run_ids, records, strict=True)
                if raw and raw.get(b"owner", b"").decode() == user]
        if status is not None:
            runs = [r for r in runs if r.status == status]
        return runs[offset:offset + limit]

    async def delete_run(self, user: str, run: RunRecord) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(self._run_key(run.run_id))
        if run.thread_id is not None:
            pipe.zrem(self._runs_of(user, run.thread_id), run.run_id)
        await pipe.execute()
