"""The collector settings a running server uses, and that they are undone when it stops."""

from __future__ import annotations

import gc

from agents.fake import say
from server.gc_tuning import YOUNG_THRESHOLD, long_lived_heap


async def test_the_startup_heap_is_frozen_while_the_server_runs(make_app, client_for) -> None:
    before = gc.get_threshold()
    app = make_app([say("hello")])
    async with client_for(app) as client:
        # Modules, settings, the platform: far more than a few objects.
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
        reply = await client.post("/chat", json={"message": "hi"})
        assert reply.status_code == 200 and reply.json()["message"]["content"] == "hello"
        garbage: list[object] = []
        garbage.append(garbage)  # a cycle made while frozen is still collected
        del garbage
        assert gc.collect() >= 1
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


def test_overlapping_servers_restore_the_collector_when_the_last_stops() -> None:
    before = gc.get_threshold()
    first, second = long_lived_heap(), long_lived_heap()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first to start stops first
    assert gc.get_freeze_count() > 0 and gc.get_threshold()[0] == YOUNG_THRESHOLD
    second.__exit__(None, None, None)
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before
