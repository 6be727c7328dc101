"""The agents Parley ships, and loading a replacement catalogue from a JSON file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from agents.spec import ALL_TOOLS, AgentSpec

_BASE = (
    "You are {name}, an assistant in Parley. Answer clearly and briefly. "
    "Use a tool when it gives a better answer than you can alone; never invent tool "
    "results. If a tool reports an error, tell the user what went wrong in plain words."
)

BUILTIN_AGENTS: tuple[AgentSpec, ...] = (
    AgentSpec(
        name="assistant",
        description="General assistant with every tool: weather, reports, summaries, "
        "translation and any installed plugin.",
        instructions=_BASE.format(name="Parley Assistant"),
        tools=[ALL_TOOLS],
    ),
    AgentSpec(
        name="weather",
        description="Current weather and forecasts for any place.",
        instructions=_BASE.format(name="the weather agent")
        + " Always look the weather up with the weather tool; give temperatures in °C.",
        tools=["get_weather"],
    ),
    AgentSpec(
        name="reports",
        description="Reports and charts over your own conversations with Parley.",
        instructions=_BASE.format(name="the reports agent")
        + " Build reports with the reports tool and show its chart link.",
        tools=["usage_report"],
    ),
    AgentSpec(
        name="summarizer",
        description="Summaries of texts of any length.",
        instructions=_BASE.format(name="the summarizer agent")
        + " Summarize the text the user gives with the summarizer tool.",
        tools=["summarize_text"],
    ),
    AgentSpec(
        name="translator",
        description="Translation between languages, keeping formatting intact.",
        instructions=_BASE.format(name="the translator agent")
        + " Translate with the translator tool; never translate code blocks.",
        tools=["translate_text"],
    ),
)


def load_agents(
    path: Path | None = None, tool_overrides: Mapping[str, list[str]] | None = None
) -> dict[str, AgentSpec]:
    """The built-in catalogue, or the one in `path` (a JSON list of agent specs), with
    per-agent tool allow-lists from settings applied on top."""
    specs = list(BUILTIN_AGENTS)
    if path is not None:
        raw = json.loads(path.read_text())
        specs = [AgentSpec.model_validate(item) for item in raw]
    agents = {spec.name: spec for spec in specs}
    for name, tools in (tool_overrides or {}).items():
        if name not in agents:
            raise ValueError(f"tool allow-list names unknown agent {name!r}")
        agents[name] = agents[name].model_copy(update={"tools": list(tools)})
    return agents
