"""Runs of the Agent Protocol: made on a thread (or stateless), queued behind the thread's
current run or refused by `multitask_strategy`, run in a task of their own through the
one runner, their events formatted into the run's event log, their status kept.

A run's life: pending (queued, or `after_seconds`), running, then success (answered, or
paused at an interrupt: the thread is then "interrupted"), error, or interrupted
(cancelled). A run cancelled for a `rollback` leaves nothing: its checkpoints and its
record go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.messages import AnyMessage
from langchain_core.utils.uuid import uuid7

from graphs.context import TurnContext, thread_config, thread_key
from server.agent_protocol.assistants import thread_metadata
from server.agent_protocol.frames import Frames, passthrough
from server.agent_protocol.lanes import LEASE_MS, Lanes
from server.agent_protocol.store import RunRecord, RunStatus, Store, ThreadStatus, now_iso
from server.live import LiveRun, LiveRuns
from server.live.runs import OnDisconnect
from server.platform import Agent
from server.runner import Answer, Failed, Interrupted, Runner, RunOptions
from server.runner.holds import Release as ThreadRelease
from server.runner.options import PLAIN
from server.runner.own_task import settled

log = logging.getLogger(__name__)


class ThreadBusy(Exception):
    """The thread runs another run and the strategy is "reject"."""


@dataclass(frozen=True)
class RunRequest:
    owner: str
    agent: Agent
    assistant_id: str
    thread_id: str | None  # None: stateless, the client sends the whole conversation
    messages: list[AnyMessage] | None  # None: no new input (resume, regenerate)
    # The tool approval this run's resume answers, claimed for it: released when the run
    # ends, whatever its durability or its wait in the thread's queue.
    approval_id: str | None = None
    options: RunOptions = PLAIN
    stream_modes: tuple[str, ...] = ("values",)
    multitask_strategy: str = "reject"
    on_disconnect: OnDisconnect = "continue"
    grace: float = 0.0
    after_seconds: float = 0.0
    kept: bool = True  # its events go to Redis (for followers anywhere): not for runs/wait
    profile: Mapping[str, Any] | None = None
    new_thread: bool = False  # a run without a thread: the server names it, nothing stored
    metadata: dict[str, Any] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)  # what the run record shows

    @property
    def lane(self) -> str | None:
        return thread_key(self.owner, self.thread_id) if self.thread_id else None


# Lets a claimed tool approval go (owner, approval id): ApprovalStore.release.
Release = Callable[[str, str], Awaitable[None]]


async def _keep_nothing(_owner: str, _approval_id: str) -> None:
    return None


class RunManager:
    def __init__(self, *, store: Store, lanes: Lanes, live: LiveRuns, runner: Runner,
                 checkpointer: Any, release: Release = _keep_nothing) -> None:
        self.store = store
        self.release = release
        self.lanes = lanes
        self.live = live
        self.runner = runner
        self.checkpointer = checkpointer
        self._held: dict[str, str] = {}  # lane -> run holding it here
        self._waiting: dict[str, set[asyncio.Future[None]]] = defaultdict(set)
        self._done: dict[str, set[asyncio.Future[None]]] = defaultdict(set)
        self._heartbeat: asyncio.Task[None] | None = None
        live.bus.on("freed", lambda m: self._wake(self._waiting, str(m.get("lane"))))
        live.bus.on("done", lambda m: self._wake(self._done, str(m.get("run_id"))))

    async def start(self) -> None:
        self._heartbeat = asyncio.create_task(self._beat())

    async def aclose(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat

    async def hold(self, owner: str, thread_id: str, holder: str) -> ThreadRelease | None:
        """Hold a thread for a turn that is not a run (a `/chat` message, a decision, an MCP
        call, an expired approval's resume), as a run with "reject" would: runs and turns
        find it busy until the returned release is awaited, and queued runs then take their
        turn. None: the thread is busy."""
        lane = thread_key(owner, thread_id)
        if not await self.lanes.take_if_free(lane, holder):
            return None
        self._held[lane] = holder  # the heartbeat extends its lease
        released = False

        async def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            if self._held.get(lane) == holder:
                del self._held[lane]
            try:
                pipe = self.store.redis.pipeline(transaction=False)
                await self.lanes.queue_release(pipe, lane, holder)
                self.live.bus.queue_publish(pipe, "freed", lane=lane)
                await pipe.execute()
            except Exception:  # no longer refreshed, the lease lapses within LEASE_MS
                log.warning("could not let thread %s go", thread_id, exc_info=True)

        return release

    async def create(self, request: RunRequest) -> tuple[RunRecord, LiveRun]:
        """Make the run and start it. Raises ThreadBusy for "reject" on a busy thread."""
        run_id = str(uuid7())
        lane = request.lane
        holds = False
        if lane is not None:
            if request.multitask_strategy == "reject":
                if not await self.lanes.take_if_free(lane, run_id):
                    raise ThreadBusy(request.thread_id)
                holds = True
                self._held[lane] = run_id
            else:
                if request.multitask_strategy in ("interrupt", "rollback"):
                    for other in await self.lanes.inflight(lane):
                        await self.live.cancel(other, request.multitask_strategy)
                await self.lanes.enqueue(lane, run_id)
        stamp = now_iso()
        # A run that holds its thread and waits for no clock starts at once: its record
        # says so from the start, a round trip fewer than a pending run's.
        at_once = (lane is None or holds) and request.after_seconds <= 0
        record = RunRecord(run_id=run_id, thread_id=request.thread_id,
                           assistant_id=request.assistant_id, owner=request.owner,
                           created_at=stamp, updated_at=stamp,
                           status="running" if at_once else "pending",
                           metadata=request.metadata,
                           multitask_strategy=request.multitask_strategy,
                           kwargs=request.kwargs)
        run: LiveRun | None = None
        try:
            pipe = self.store.redis.pipeline(transaction=False)
            self.store.put_run(pipe, record)
            if request.thread_id is not None:
                self.store.queue_touch(pipe, request.owner, request.thread_id,
                                       metadata=thread_metadata(request.agent.spec.name),
                                       status="busy", run_started=True)
            run = await self.live.begin(
                run_id, request.owner, lambda live_run: self._produce(live_run, request,
                                                                      holds, at_once),
                on_disconnect=request.on_disconnect, grace=request.grace,
                kept=request.kept, pipe=pipe)
            await pipe.execute()
        except BaseException:
            if lane is not None:
                self._held.pop(lane, None)
                await self.lanes.release(lane, run_id) if holds else \
                    await self.lanes.leave_queue(lane, run_id)
            if run is None:  # it never began: its approval may be decided again
                await self._release(request)
            raise
        return record, run

    async def _produce(self, run: LiveRun, request: RunRequest, holds: bool,
                       running: bool = False) -> None:
        lane = request.lane
        frames = Frames(request.stream_modes, run.log.append, thread_id=request.thread_id)
        frames.start(run.run_id)
        status: RunStatus = "error"
        thread_status: ThreadStatus = "idle"
        head: str | None = None
        forget = False
        try:
            if request.after_seconds > 0:
                await asyncio.sleep(request.after_seconds)
            if lane is not None and not holds:
                await self._wait_turn(lane, run.run_id)
                holds = True
                self._held[lane] = run.run_id
            if not running:
                await self._set_status(request, run.run_id, "running", "busy")
            if lane is not None and getattr(self.checkpointer, "keep", 1) > 1:
                head = await self.checkpointer.alatest_id(
                    thread_config(request.owner, request.thread_id or ""))
            status, thread_status = await self._run(run, request, frames)
        except asyncio.CancelledError:
            status, thread_status = "interrupted", "idle"
            if lane is not None and not holds:
                await self.lanes.leave_queue(lane, run.run_id)
            await settled()  # the graph has stopped: nothing writes behind what follows
            if run.cancel_action == "rollback" and holds and request.thread_id:
                await self._roll_back(request, head)
                forget = True
        except Exception as exc:
            log.exception("run %s failed before its turn", run.run_id)
            frames.error(Failed("internal", f"The run failed ({type(exc).__name__})."))
        finally:
            run.result = frames.result()
            await self._release(request)  # the run has stopped: the approval may go on
            # The run's end in one round trip: its status, the thread let go, and the
            # replicas told so (queued runs wake on "freed").
            pipe = self.store.redis.pipeline(transaction=False)
            if not forget:
                # A run that never held the thread (cancelled in the queue) leaves its
                # status to the run that does.
                self._queue_status(pipe, request, run.run_id, status,
                                   thread_status if holds or lane is None else None)
            if lane is not None and holds:
                self._held.pop(lane, None)
                await self.lanes.queue_release(pipe, lane, run.run_id)
                self.live.bus.queue_publish(pipe, "freed", lane=lane)
            await pipe.execute()
            if forget:
                record = await self.store.get_run(request.owner, run.run_id)
                if record is not None:
                    await self.store.delete_run(request.owner, record)
            frames.end()
            await self.live.bus.publish("done", run_id=run.run_id)

    async def _release(self, request: RunRequest) -> None:
        if request.approval_id is None:
            return
        try:
            await self.release(request.owner, request.approval_id)
        except Exception:  # it lapses by itself; the resume answered only its interrupt
            log.warning("could not release the claim on approval %s", request.approval_id,
                        exc_info=True)

    async def _run(self, run: LiveRun, request: RunRequest, frames: Frames
                   ) -> tuple[RunStatus, ThreadStatus]:
        agent = request.agent
        stateful = request.thread_id is not None
        ctx = TurnContext(user_id=request.owner, thread_id=request.thread_id or run.run_id,
                          agent=agent.spec.name, turn_id=run.run_id, persist=stateful,
                          profile=request.profile, new_thread=request.new_thread)
        options = replace(request.options, passthrough=passthrough(request.stream_modes))
        status: RunStatus = "error"
        thread_status: ThreadStatus = "error"
        events = self.runner.stream(agent.graph if stateful else agent.stateless_graph, ctx,
                                    request.messages, tokens=False, options=options)
        async with aclosing(events):
            async for event in events:
                frames.add(event)
                if isinstance(event, Answer):
                    status, thread_status = "success", "idle"
                elif isinstance(event, Interrupted):
                    status, thread_status = "success", "interrupted"
        return status, thread_status

    async def _roll_back(self, request: RunRequest, head: str | None) -> None:
        """Undo a cancelled run: the thread goes back to where it was before it."""
        config = thread_config(request.owner, request.thread_id or "")
        if head is not None:
            config["configurable"]["checkpoint_id"] = head
            if await self.checkpointer.arewind(config):
                return
        if head is None:  # the thread had no state before this run
            await self.checkpointer.adelete_thread(thread_key(request.owner,
                                                              request.thread_id or ""))

    async def _set_status(self, request: RunRequest, run_id: str, status: RunStatus,
                          thread_status: ThreadStatus | None) -> None:
        pipe = self.store.redis.pipeline(transaction=False)
        self._queue_status(pipe, request, run_id, status, thread_status)
        await pipe.execute()

    def _queue_status(self, pipe: Any, request: RunRequest, run_id: str, status: RunStatus,
                      thread_status: ThreadStatus | None) -> None:
        self.store.set_run_status(pipe, run_id, status)
        if request.thread_id is not None and thread_status is not None:
            self.store.queue_status(pipe, request.owner, request.thread_id, thread_status)

    async def _wait_turn(self, lane: str, run_id: str) -> None:
        """Until this run holds the thread: woken when a run lets a thread go, and every
        second anyway, since a replica that died frees its threads only by expiry."""
        while not await self.lanes.take_in_turn(lane, run_id):
            await self._wait(self._waiting, lane, every=1.0)

    async def wait_done(self, run_id: str, *, every: float = 1.0) -> None:
        """Until the run has ended, wherever it runs."""
        while await self.live.alive(run_id):
            local = self.live.local(run_id)
            if local is not None and local.task is not None:
                await asyncio.shield(local.task)
                return
            await self._wait(self._done, run_id, every=every)

    async def _wait(self, waiting: dict[str, set[asyncio.Future[None]]], key: str, *,
                    every: float) -> None:
        """Until woken for `key`, or `every` seconds (then the caller looks again)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting[key].add(future)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(future, every)
        finally:
            waiting[key].discard(future)
            if not waiting[key]:
                waiting.pop(key, None)

    @staticmethod
    def _wake(waiting: dict[str, set[asyncio.Future[None]]], key: str) -> None:
        for future in waiting.get(key, ()):
            if not future.done():
                future.set_result(None)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(LEASE_MS / 3000)
            try:
                await self.lanes.refresh(dict(self._held))
            except Exception:
                log.warning("could not extend the runs' thread leases", exc_info=True)




