"""A scripted conversation calls every built-in tool through the graph, over HTTP, on a
real `parley serve` with the weather API replayed locally."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from httpx_sse import connect_sse

from tests.support.replay_server import Answer, replay_server
from tests.support.serve import parley_serve, sign_up

RECORDINGS = Path(__file__).parent / "recordings" / "weather"
LONG_TEXT = " ".join(f"Point {i}: the committee agreed on item {i}." for i in range(40))

SCRIPT = [{"route": {
    "weather": {"tool_calls": [{"name": "get_weather", "args": {"place": "Paris", "days": 2}}]},
    "summarize": {"tool_calls": [{"name": "summarize_text",
                                  "args": {"text": LONG_TEXT, "style": "tldr"}}]},
    "translate": {"tool_calls": [{"name": "translate_text",
                                  "args": {"text": "Good morning", "target_language": "fr"}}]},
    "report": {"tool_calls": [{"name": "usage_report", "args": {"period_days": 7}}]},
    "*": "Source: English\nBonjour",
}}]


def stream_turn(url: str, headers: dict[str, str], message: str) -> list[tuple[str, dict]]:
    with httpx.Client(timeout=60) as client, connect_sse(
            client, "POST", f"{url}/chat/stream", headers=headers,
            json={"message": message}) as source:
        if source.response.status_code != 200:
            source.response.read()
            raise AssertionError(f"{source.response.status_code}: {source.response.text}")
        return [(e.event, json.loads(e.data)) for e in source.iter_sse()]


def test_every_built_in_tool_through_the_graph(tmp_path: Path, redis_url: str) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps(SCRIPT))
    with replay_server() as weather:
        weather.on("/v1/search", Answer.file(RECORDINGS / "geocoding_paris.json"))
        weather.on("/v1/forecast", Answer.file(RECORDINGS / "forecast_paris.json"))
        env = {"PARLEY_LLM": "fake", "PARLEY_FAKE_SCRIPT": str(script),
               "PARLEY_REDIS_URL": redis_url, "PARLEY_RATE_LIMIT_PER_MINUTE": "6000",
               "PARLEY_WEATHER_GEOCODING_URL": f"{weather.url}/v1/search",
               "PARLEY_WEATHER_FORECAST_URL": f"{weather.url}/v1/forecast"}
        with parley_serve(tmp_path, env) as served:
            ada, bob = sign_up(served.url, "ada"), sign_up(served.url, "bob")
            tools = {t["name"]: t["source"] for t in
                     httpx.get(f"{served.url}/tools", headers=ada).json()}
            outputs = {}
            for message in ("weather in Paris?", "summarize this please",
                            "translate good morning", "my activity report"):
                events = stream_turn(served.url, ada, message)
                names = [name for name, _ in events]
                assert names[-1] == "done" and "error" not in names, events
                ends = [data for name, data in events if name == "tool_end"]
                assert len(ends) == 1 and ends[0]["status"] == "ok", ends
                outputs[ends[0]["tool"]] = ends[0]["output"]
            # The reports read history, which the turn stream fills a moment later.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(httpx.get(
                    f"{served.url}/history/threads", headers=ada).json()) < 4:
                time.sleep(0.1)
            report = stream_turn(served.url, ada, "report please")
            output = next(d for n, d in report if n == "tool_end")["output"]
            chart = output.split("Chart: ")[1].split()[0]
            csv_url = output.split("Data (CSV): ")[1].split()[0]
            png = httpx.get(f"{served.url}{chart}", headers=ada)
            csv = httpx.get(f"{served.url}{csv_url}", headers=ada)
            other = httpx.get(f"{served.url}{chart}", headers=bob)
            anonymous = httpx.get(f"{served.url}{chart}")
    assert {"get_weather", "summarize_text", "translate_text", "usage_report"} <= set(tools)
    assert tools["get_weather"] == "builtin"
    assert outputs["get_weather"].startswith("Weather for Paris, Île-de-France, France")
    assert outputs["summarize_text"]  # the agent's own model wrote it
    assert outputs["translate_text"].startswith("Translated from English to French")
    assert "usage_report" in outputs
    # Four turns: each a question, a tool call, the tool's result and an answer.
    assert "12 messages in 4 conversations" in output
    assert "| get_weather | 1 |" in output and "| usage_report | 1 |" in output
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert csv.status_code == 200 and csv.text.startswith("date,your_messages,answers")
    assert other.status_code == 404 and anonymous.status_code == 401
