"""Many clients at once against a running server: SSE chat streams, and a burst of new
users who register, log in and chat. Counts what each got, for tests to assert on and for
`make bench` to report."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

PASSWORD = "a long enough password"


@dataclass
class StreamOutcome:
    status: int
    retry_after: str | None = None
    events: list[str] = field(default_factory=list)
    error: str | None = None  # an `error` event's message, or a transport failure
    first_event_s: float | None = None


@dataclass
class LoadReport:
    outcomes: list[StreamOutcome]
    seconds: float

    @property
    def statuses(self) -> Counter[int]:
        return Counter(o.status for o in self.outcomes)

    @property
    def completed(self) -> int:
        return sum(1 for o in self.outcomes if o.status == 200 and "message" in o.events
                   and o.events[-1:] == ["done"] and o.error is None)

    @property
    def refused(self) -> list[StreamOutcome]:
        return [o for o in self.outcomes if o.status in (429, 503)]

    @property
    def errors(self) -> list[StreamOutcome]:
        """Everything that is neither a complete turn nor a refusal up front."""
        return [o for o in self.outcomes if o.status not in (429, 503)
                and not (o.status == 200 and "message" in o.events and o.error is None
                         and o.events[-1:] == ["done"])]

    def first_event(self) -> dict[str, float]:
        times = sorted(o.first_event_s for o in self.outcomes if o.first_event_s is not None)
        if not times:
            return {}
        return {"p50": round(statistics.median(times), 3),
                "p99": round(times[min(len(times) - 1, int(len(times) * 0.99))], 3)}

    def summary(self) -> dict[str, Any]:
        return {"requests": len(self.outcomes), "completed": self.completed,
                "refused": len(self.refused), "errors": len(self.errors),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "first_event_s": self.first_event(), "seconds": round(self.seconds, 2)}


async def stream_chat(client: httpx.AsyncClient, headers: dict[str, str], message: str
                      ) -> StreamOutcome:
    started = time.perf_counter()
    try:
        async with client.stream("POST", "/chat/stream", json={"message": message},
                                 headers=headers) as response:
            outcome = StreamOutcome(status=response.status_code,
                                    retry_after=response.headers.get("retry-after"))
            if response.status_code != 200:
                await response.aread()
                outcome.error = response.text[:200]
                return outcome
            name = ""
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                    if outcome.first_event_s is None:
                        outcome.first_event_s = time.perf_counter() - started
                    outcome.events.append(name)
                elif line.startswith("data:") and name == "error":
                    outcome.error = json.loads(line[5:])["message"]
            return outcome
    except httpx.HTTPError as exc:
        return StreamOutcome(status=0, error=f"{type(exc).__name__}: {exc}")


def client_for(url: str, concurrency: int, timeout: float = 120.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=timeout, limits=httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency))


async def login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    await client.post("/auth/register", json={"username": username, "password": PASSWORD})
    response = await client.post("/auth/login", json={"username": username,
                                                      "password": PASSWORD})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def concurrent_streams(url: str, headers: list[dict[str, str]], count: int
                             ) -> LoadReport:
    """`count` chat streams at once, spread over the users whose `headers` are given."""
    async with client_for(url, count) as client:
        started = time.perf_counter()
        outcomes = await asyncio.gather(*(
            stream_chat(client, headers[i % len(headers)], f"question {i}")
            for i in range(count)))
        return LoadReport(list(outcomes), time.perf_counter() - started)


async def new_users_burst(url: str, count: int, prefix: str = "burst") -> LoadReport:
    """`count` users who did not exist register, log in and stream a chat, all at once."""
    async with client_for(url, count) as client:
        started = time.perf_counter()

        async def one(i: int) -> StreamOutcome:
            try:
                headers = await login(client, f"{prefix}{i}")
            except httpx.HTTPStatusError as exc:
                return StreamOutcome(status=exc.response.status_code,
                                     retry_after=exc.response.headers.get("retry-after"),
                                     error=exc.response.text[:200])
            except httpx.HTTPError as exc:
                return StreamOutcome(status=0, error=f"{type(exc).__name__}: {exc}")
            return await stream_chat(client, headers, f"hello from user {i}")

        outcomes = await asyncio.gather(*(one(i) for i in range(count)))
        return LoadReport(list(outcomes), time.perf_counter() - started)
