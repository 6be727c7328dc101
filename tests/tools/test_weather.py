"""The weather tool against a local server replaying Open-Meteo's answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from tests.support.replay_server import Answer, Replay, replay_server
from tools.context import ToolContext
from tools.weather import weather_tools

RECORDINGS = Path(__file__).parent / "recordings" / "weather"
GEO, FORECAST = "/v1/search", "/v1/forecast"


@pytest.fixture
def replay() -> Iterator[Replay]:
    with replay_server() as server:
        server.on(GEO, Answer.file(RECORDINGS / "geocoding_paris.json"))
        server.on(FORECAST, Answer.file(RECORDINGS / "forecast_paris.json"))
        yield server


def tool_for(replay: Replay, redis: object = None, **options: object):  # type: ignore[no-untyped-def]
    ctx = ToolContext(options={"weather_geocoding_url": f"{replay.url}{GEO}",
                               "weather_forecast_url": f"{replay.url}{FORECAST}",
                               "http_timeout": 0.5, "weather_backoff": 0.01, **options},
                      redis=redis)
    return weather_tools(ctx)[0]


async def test_current_conditions_and_forecast(replay: Replay) -> None:
    text = await tool_for(replay).ainvoke({"place": "Paris", "days": 3})
    assert text.startswith("Weather for Paris, Île-de-France, France")
    assert "Now: overcast, 7.4°C (feels like 4.1°C), humidity 81%, wind 14.3 km/h" in text
    assert "2026-11-25: slight rain, 6.0 to 10.4 °C, precipitation 4.2 mm (85% chance)." in text
    forecast_query = next(q for p, q in replay.requests if p == FORECAST)
    assert forecast_query["forecast_days"] == ["3"]
    assert forecast_query["latitude"] == ["48.85341"]


async def test_the_country_picks_among_places_of_one_name(replay: Replay) -> None:
    text = await tool_for(replay).ainvoke({"place": "Paris, United States"})
    assert "Paris, Texas, United States" in text
    assert next(q for p, q in replay.requests if p == FORECAST)["latitude"] == ["33.66094"]
    assert next(q for p, q in replay.requests if p == GEO)["name"] == ["Paris"]


async def test_unknown_place_says_what_to_fix(replay: Replay) -> None:
    replay.on(GEO, Answer.file(RECORDINGS / "geocoding_none.json"))
    text = await tool_for(replay).ainvoke({"place": "Atlantisville"})
    assert "no place called 'Atlantisville' was found" in text
    assert replay.count(FORECAST) == 0


async def test_a_5xx_is_retried(replay: Replay) -> None:
    replay.on(FORECAST, Answer.json({"error": True}, status=503),
              Answer.file(RECORDINGS / "forecast_paris.json"))
    text = await tool_for(replay).ainvoke({"place": "Paris"})
    assert "Now: overcast" in text
    assert replay.count(FORECAST) == 2


async def test_an_outage_gives_up_after_the_retries(replay: Replay) -> None:
    replay.on(FORECAST, Answer.json({"error": True}, status=502))
    text = await tool_for(replay, weather_retries=3).ainvoke({"place": "Paris"})
    assert "the weather service is failing (HTTP 502); tried 3 times" in text
    assert replay.count(FORECAST) == 3


async def test_a_400_is_reported_with_its_reason(replay: Replay) -> None:
    replay.on(FORECAST, Answer.file(RECORDINGS / "forecast_error.json", status=400))
    text = await tool_for(replay).ainvoke({"place": "Paris"})
    assert "refused the request: Latitude must be in range" in text
    assert replay.count(FORECAST) == 1  # a client error is not retried


async def test_a_slow_answer_times_out(replay: Replay) -> None:
    replay.on(FORECAST, Answer.file(RECORDINGS / "forecast_paris.json", delay=2.0))
    text = await tool_for(replay, weather_retries=2).ainvoke({"place": "Paris"})
    assert "did not answer within 0.5 s" in text


async def test_no_network(replay: Replay) -> None:
    from server.embedded.redis_server import free_port

    closed = f"http://127.0.0.1:{free_port()}"
    ctx_tool = weather_tools(ToolContext(options={
        "weather_geocoding_url": f"{closed}/v1/search", "weather_backoff": 0.01}))[0]
    text = await ctx_tool.ainvoke({"place": "Paris"})
    assert "cannot be reached (ConnectError)" in text


async def test_bad_arguments_are_refused(replay: Replay) -> None:
    tool = tool_for(replay)
    for args in ({"place": "Paris", "days": 8}, {"place": "", "days": 1}, {"days": 2}):
        with pytest.raises(ValidationError):
            await tool.ainvoke(args)
    assert replay.requests == []
    schema = tool.tool_call_schema.model_json_schema()
    assert schema["properties"]["days"]["maximum"] == 7


async def test_answers_are_cached_in_redis(replay: Replay, redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    tool = tool_for(replay, redis=redis, weather_cache_ttl=120)
    first = await tool.ainvoke({"place": "Paris", "days": 2})
    second = await tool.ainvoke({"place": "  PARIS ", "days": 2})
    other = await tool.ainvoke({"place": "Paris", "days": 3})
    keys = await redis.keys("parley:weather:*")
    ttl = await redis.ttl(keys[0])
    await redis.aclose()
    assert first == second and other
    assert replay.count(FORECAST) == 2  # the second question came from the cache
    assert len(keys) == 2 and 0 < ttl <= 120
