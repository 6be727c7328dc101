"""`/metrics` in Prometheus format after a scripted conversation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from agents.fake import call, say


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


async def test_metrics_after_a_conversation(make_app, client_for, redis_url) -> None:
    app = make_app([call("add", a=1, b=2), say("3."), say("Hi.")], cycle=False,
                   redis_url=redis_url, memory_enabled=True)
    async with client_for(app) as client:
        await client.post("/chat", json={"message": "1+2?"})
        await client.post("/chat/stream", json={"message": "hello"})
        await client.post("/chat", json={"message": ""})  # a 422
        response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert value(found, "parley_http_requests_total", method="POST", route="/chat",
                 status="200") == 1
    assert value(found, "parley_http_requests_total", method="POST", route="/chat",
                 status="422") == 1
    assert value(found, "parley_http_request_seconds_count", method="POST",
                 route="/chat/stream") == 1
    assert value(found, "parley_turns_total", agent="assistant", outcome="ok") == 2
    assert value(found, "parley_tool_calls_total", tool="add", status="ok") == 1
    assert value(found, "parley_tool_call_seconds_count", tool="add") == 1
    llm_calls = sum(v for (name, _), v in found.items()
                    if name == "parley_llm_call_seconds_count")
    assert llm_calls == 3  # the tool call, its answer, the greeting
    assert value(found, "parley_memory_recall_seconds_count") == 2
    assert ("parley_turn_stream_pending", ()) in found
    tokens = {labels: v for (name, labels), v in found.items()
              if name == "parley_llm_tokens_total"}
    assert {dict(labels)["kind"] for labels in tokens} == {"input_tokens", "output_tokens"}
    assert all(v > 0 for v in tokens.values())

    # Every series the Grafana dashboard plots is one this conversation produced.
    dashboard = json.loads((Path(__file__).parents[3] / "deploy/grafana/"
                            "parley-dashboard.json").read_text())
    plotted = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"\bparley_[a-z_]+", target["expr"])}
    assert len(plotted) >= 9
    assert plotted <= {name for name, _ in found}, plotted - {name for name, _ in found}


async def test_failed_turns_are_counted(make_app, client_for) -> None:
    def broken(_messages):  # type: ignore[no-untyped-def]
        raise RuntimeError("no model")

    async with client_for(make_app([broken])) as client:
        await client.post("/chat", json={"message": "hi"})
        found = samples((await client.get("/metrics")).text)
    assert value(found, "parley_turns_total", agent="assistant", outcome="error") == 1


async def test_the_turn_backlog_counts_unread_and_unacknowledged_turns(redis_url) -> None:
    from redis.asyncio import Redis

    from server.metrics import turn_stream_backlog

    redis = Redis.from_url(redis_url)
    stream = "parley:turns:backlog-test"
    try:
        assert await turn_stream_backlog(redis, stream, "history") == 0  # nothing published
        for n in range(3):
            await redis.xadd(stream, {"turn": str(n)})
        # The history service never started: every turn is waiting.
        assert await turn_stream_backlog(redis, stream, "history") == 3
        await redis.xgroup_create(stream, "history", id="0")
        assert await turn_stream_backlog(redis, stream, "history") == 3  # none read yet
        read: Any = await redis.xreadgroup("history", "c1", {stream: ">"}, count=2)
        await redis.xack(stream, "history", read[0][1][0][0])
        assert await turn_stream_backlog(redis, stream, "history") == 2  # 1 unread, 1 unacked
        rest: Any = await redis.xreadgroup("history", "c1", {stream: ">"})
        await redis.xack(stream, "history", read[0][1][1][0], rest[0][1][0][0])
        assert await turn_stream_backlog(redis, stream, "history") == 0
    finally:
        await redis.delete(stream)
        await redis.aclose()
