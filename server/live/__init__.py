"""Runs that outlive the request that started them: each runs in a task of its own, its
formatted events go to an event log that followers read from any point (a reconnecting
client's `Last-Event-ID`), in this process and, with Redis, in a bounded Redis Stream
with a TTL that a follower on another replica reads. Cancelling, watching and "done" go
over one Redis pub/sub channel. `/chat/stream` and the Agent Protocol's runs use it; the
turn itself is still run by the one runner (server/runner/).
"""

from server.live.log import EventLog, Frame
from server.live.runs import LiveRun, LiveRuns, NoSuchRun

__all__ = ["EventLog", "Frame", "LiveRun", "LiveRuns", "NoSuchRun"]
