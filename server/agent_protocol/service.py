"""The Agent Protocol's parts, built at start-up beside the platform: the live runs every
streaming face uses, and (with Redis) the thread and run records and the run manager."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from graphs.context import thread_config
from server.agent_protocol.assistants import thread_metadata
from server.agent_protocol.lanes import Lanes
from server.agent_protocol.manager import RunManager
from server.agent_protocol.store import Store
from server.live import LiveRuns
from server.platform import Platform
from server.runner import Runner


@dataclass(frozen=True)
class AgentProtocol:
    store: Store
    manager: RunManager
    live: LiveRuns
    platform: Platform

    async def find_thread(self, user_id: str, thread_id: str) -> Any:
        """The caller's thread record; a thread `/chat` made before it had one is
        recorded on first sight (same thread, same checkpoint)."""
        record = await self.store.get_thread(user_id, thread_id)
        if record is not None:
            return record
        saved = await self.platform.checkpointer.aget_tuple(thread_config(user_id, thread_id))
        if saved is None:
            return None
        agent = str(saved.metadata.get("agent") or "assistant")
        await self.store.touch_thread(user_id, thread_id, metadata=thread_metadata(agent))
        return await self.store.get_thread(user_id, thread_id)


@dataclass(frozen=True)
class Live:
    runs: LiveRuns
    protocol: AgentProtocol | None  # None without Redis: the Agent Protocol needs it


@asynccontextmanager
async def running(platform: Platform, runner: Runner) -> AsyncIterator[Live]:
    settings = platform.settings
    runs = LiveRuns(platform.redis, max_len=settings.run_events_max,
                    ttl=settings.run_events_ttl_seconds)
    await runs.start()
    protocol = None
    try:
        if platform.redis is not None:
            store = Store(platform.redis, ttl=settings.thread_ttl_minutes * 60)
            manager = RunManager(store=store, lanes=Lanes(platform.redis), live=runs,
                                 runner=runner, checkpointer=platform.checkpointer,
                                 release=platform.approvals.release)
            await manager.start()
            protocol = AgentProtocol(store=store, manager=manager, live=runs,
                                     platform=platform)
        try:
            yield Live(runs=runs, protocol=protocol)
        finally:
            if protocol is not None:
                await protocol.manager.aclose()
    finally:
        await runs.aclose()
