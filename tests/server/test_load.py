"""A real `parley serve` under load, as the embedded shape runs it: hundreds of concurrent
chat streams and a burst of new users. Every request either completes its turn or is
refused up front (503 or 429, with Retry-After); none gets a 500 or an error event. The
speed figures of the same runs are `make bench`'s, not asserted here."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from bench.load_client import LoadReport, client_for, concurrent_streams, login, new_users_burst
from tests.support.serve import parley_serve


def assert_held(report: LoadReport) -> None:
    assert report.errors == [], [(o.status, o.error) for o in report.errors[:5]]
    assert all(o.retry_after for o in report.refused), report.summary()
    assert report.completed > 0, report.summary()


def test_hundreds_of_streams_and_a_burst_of_new_users(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps(["Fine, thanks for asking."]))
    env = {"PARLEY_LLM": "fake", "PARLEY_FAKE_SCRIPT": str(script),
           "PARLEY_RATE_LIMIT_PER_MINUTE": "0",
           # A small limit, so that some of the streams find it full and are refused.
           "PARLEY_MAX_CONCURRENT_TURNS": "24", "PARLEY_TURN_WAIT_SECONDS": "2"}
    with parley_serve(tmp_path, env) as served:

        async def run() -> tuple[LoadReport, LoadReport]:
            async with client_for(served.url, 8) as client:
                users = [await login(client, f"user{i}") for i in range(8)]
            streams = await concurrent_streams(served.url, users, 300)
            burst = await new_users_burst(served.url, 60)
            return streams, burst

        streams, burst = asyncio.run(run())
        log = served.log.read_text()
    assert_held(streams)
    assert streams.refused, "300 streams against a limit of 24 found it full at least once"
    assert_held(burst)
    assert burst.completed == 60  # registering and logging in queue, they are not refused
    assert "Traceback" not in log, log[log.index("Traceback") - 300:][:3000]
