"""What a tool factory may receive from the platform, so tools never read settings or
import the server: dependencies are passed in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel


@dataclass(frozen=True)
class ToolContext:
    """Handed to a tool factory that declares a parameter; factories that take none are
    called with no arguments.

    - `llm`: the calling agent's chat model (summarizer and translator use it).
    - `options`: tool settings by name, e.g. `weather_geocoding_url`, `http_timeout`.
    - `redis`: an async `redis.asyncio.Redis` client when Redis is configured, else None.
    - `services`: other clients the platform offers tools by name, e.g. `history`.
    """

    llm: BaseChatModel | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    redis: Any = None
    services: Mapping[str, Any] = field(default_factory=dict)

    def option(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)
