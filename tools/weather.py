"""The weather tool: current conditions and a forecast of up to 7 days for a place name,
from Open-Meteo (geocoding, then forecast; no key needed)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field

from tools.context import ToolContext

GEOCODING_URL = "https://geocoding-api.open-meteo.com/v1/search"
FORECAST_URL = "https://api.open-meteo.com/v1/forecast"

# WMO weather interpretation codes, as Open-Meteo documents them.
WMO_CODES = {
    0: "clear sky", 1: "mainly clear", 2: "partly cloudy", 3: "overcast", 45: "fog",
    48: "depositing rime fog", 51: "light drizzle", 53: "moderate drizzle",
    55: "dense drizzle", 56: "light freezing drizzle", 57: "dense freezing drizzle",
    61: "slight rain", 63: "moderate rain", 65: "heavy rain", 66: "light freezing rain",
    67: "heavy freezing rain", 71: "slight snowfall", 73: "moderate snowfall",
    75: "heavy snowfall", 77: "snow grains", 80: "slight rain showers",
    81: "moderate rain showers", 82: "violent rain showers", 85: "slight snow showers",
    86: "heavy snow showers", 95: "thunderstorm", 96: "thunderstorm with slight hail",
    99: "thunderstorm with heavy hail",
}


class WeatherArgs(BaseModel):
    place: str = Field(min_length=1, max_length=120,
                       description="City or place name, optionally with its country, "
                                   "e.g. 'Paris' or 'Paris, United States'.")
    days: int = Field(default=1, ge=1, le=7,
                      description="Days of forecast, today included (1-7).")


class WeatherClient:
    def __init__(self, ctx: ToolContext) -> None:
        self.geocoding_url = str(ctx.option("weather_geocoding_url", GEOCODING_URL))
        self.forecast_url = str(ctx.option("weather_forecast_url", FORECAST_URL))
        self.timeout = float(ctx.option("http_timeout", 10.0))
        self.retries = int(ctx.option("weather_retries", 3))
        self.backoff = float(ctx.option("weather_backoff", 0.5))
        self.cache_ttl = int(ctx.option("weather_cache_ttl", 300))
        self.redis = ctx.redis

    async def _get(self, client: httpx.AsyncClient, url: str, params: dict[str, Any]
                   ) -> dict[str, Any]:
        """GET with retries and exponential backoff on 5xx and network failures."""
        last = ""
        for attempt in range(self.retries):
            if attempt:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = await client.get(url, params=params)
            except httpx.TimeoutException:
                last = f"the weather service did not answer within {self.timeout:g} s"
                continue
            except httpx.TransportError as exc:
                last = f"the weather service cannot be reached ({type(exc).__name__})"
                continue
            if response.status_code >= 500:
                last = f"the weather service is failing (HTTP {response.status_code})"
                continue
            if response.status_code >= 400:
                reason = _reason(response)
                raise ToolException(f"the weather service refused the request: {reason}")
            data: dict[str, Any] = response.json()
            return data
        raise ToolException(f"{last}; tried {self.retries} times, try again later")

    async def weather(self, place: str, days: int) -> str:
        key = _cache_key(place, days)
        if self.redis is not None:
            cached = await self.redis.get(key)
            if cached:
                return str(cached.decode() if isinstance(cached, bytes) else cached)
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            location = await self._locate(client, place)
            forecast = await self._get(client, self.forecast_url, {
                "latitude": location["latitude"], "longitude": location["longitude"],
                "current": "temperature_2m,apparent_temperature,relative_humidity_2m,"
                           "precipitation,weather_code,wind_speed_10m",
                "daily": "weather_code,temperature_2m_max,temperature_2m_min,"
                         "precipitation_sum,precipitation_probability_max",
                "timezone": "auto", "forecast_days": days,
            })
        text = describe(location, forecast)
        if self.redis is not None:
            await self.redis.set(key, text, ex=self.cache_ttl)
        return text

    async def _locate(self, client: httpx.AsyncClient, place: str) -> dict[str, Any]:
        name, _, country = (part.strip() for part in place.partition(","))
        found = await self._get(client, self.geocoding_url,
                                {"name": name, "count": 10, "language": "en", "format": "json"})
        results = found.get("results") or []
        if country:
            wanted = country.lower()
            results = [r for r in results if wanted in (
                str(r.get("country", "")).lower(), str(r.get("country_code", "")).lower(),
                str(r.get("admin1", "")).lower())] or []
        if not results:
            raise ToolException(f"no place called {place!r} was found; check the spelling "
                                "or add the country, e.g. 'Springfield, United States'")
        return dict(results[0])


def describe(location: dict[str, Any], data: dict[str, Any]) -> str:
    where = ", ".join(str(p) for p in (location.get("name"), location.get("admin1"),
                                       location.get("country")) if p)
    current, units = data.get("current", {}), data.get("current_units", {})
    lines = [f"Weather for {where} (local time {current.get('time', '?')}):"]
    if current:
        lines.append(
            f"Now: {WMO_CODES.get(current.get('weather_code', -1), 'unknown conditions')}, "
            f"{current.get('temperature_2m')}{units.get('temperature_2m', '°C')} (feels like "
            f"{current.get('apparent_temperature')}{units.get('apparent_temperature', '°C')}), "
            f"humidity {current.get('relative_humidity_2m')}%, wind "
            f"{current.get('wind_speed_10m')} {units.get('wind_speed_10m', 'km/h')}, "
            f"precipitation {current.get('precipitation')} {units.get('precipitation', 'mm')}.")
    daily = data.get("daily", {})
    for i, day in enumerate(daily.get("time", [])):
        lines.append(
            f"{day}: {WMO_CODES.get(daily['weather_code'][i], 'unknown')}, "
            f"{daily['temperature_2m_min'][i]} to {daily['temperature_2m_max'][i]} °C, "
            f"precipitation {daily['precipitation_sum'][i]} mm "
            f"({daily['precipitation_probability_max'][i]}% chance).")
    return "\n".join(lines)


def _reason(response: httpx.Response) -> str:
    try:
        return str(response.json().get("reason", response.text[:200]))
    except ValueError:
        return response.text[:200]


def _cache_key(place: str, days: int) -> str:
    normal = " ".join(place.lower().split())
    return f"parley:weather:{hashlib.sha256(normal.encode()).hexdigest()[:24]}:{days}"


def weather_tools(ctx: ToolContext) -> list[BaseTool]:
    client = WeatherClient(ctx)

    async def get_weather(place: str, days: int = 1) -> str:
        return await client.weather(place, days)

    tool = StructuredTool.from_function(
        coroutine=get_weather, name="get_weather", args_schema=WeatherArgs,
        description="Current weather conditions and a forecast of up to 7 days for a place "
                    "name: temperature, rain, wind. Use it for any question about weather.",
        handle_tool_error=True,
        # Phrasings that should pick this tool: small local models route by them.
        metadata={"examples": ["what's the weather in Rome", "will it snow in Denver this week",
                               "forecast for Nairobi tomorrow", "is it windy in Boston",
                               "temperature outside in Seoul", "do I need a coat in Dublin"]})
    return [tool]


