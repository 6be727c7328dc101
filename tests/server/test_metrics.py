"""`/metrics` in Prometheus format after a scripted conversation."""

from __future__ import annotations

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


async def test_failed_turns_are_counted(make_app, client_for) -> None:
    def broken(_messages):  # type: ignore[no-untyped-def]
        raise RuntimeError("no model")

    async with client_for(make_app([broken])) as client:
        await client.post("/chat", json={"message": "hi"})
        found = samples((await client.get("/metrics")).text)
    assert value(found, "parley_turns_total", agent="assistant", outcome="error") == 1
