"""`make bench` pins itself to one core for its route timings; its load stage gives the
servers it starts (from the event loop's worker threads) and its clients every core."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from bench.load import _every_thread_on, whole_machine

CORES = "import os; print(sorted(os.sched_getaffinity(0)))"


def started_server_cores() -> str:
    return subprocess.run([sys.executable, "-c", CORES], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: nothing to pin apart")
async def test_servers_started_in_the_load_stage_get_every_core() -> None:
    before = os.sched_getaffinity(0)
    every = sorted(range(os.cpu_count() or 1))
    try:
        _every_thread_on({0})  # as `make bench` pins itself
        await asyncio.to_thread(lambda: None)  # a worker thread, pinned with the rest
        assert await asyncio.to_thread(started_server_cores) == "[0]"
        with whole_machine():
            assert await asyncio.to_thread(started_server_cores) == str(every)
            assert sorted(os.sched_getaffinity(0)) == every
        assert os.sched_getaffinity(0) == {0}  # the route timings' pin comes back
        assert await asyncio.to_thread(started_server_cores) == "[0]"
    finally:
        _every_thread_on(before)
