"""Discover tools through the `parley.tools` entry-point group.

Built-in tools are registered through the same path as third-party plugins (see
`pyproject.toml`), so there is one registry and nothing to edit when a tool is added.
An entry point names a LangChain tool, or a callable returning a tool or a list of tools;
a callable may take one argument, the `ToolContext`.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from langchain_core.tools import BaseTool

from tools.context import ToolContext

ENTRY_POINT_GROUP = "parley.tools"
BUILTIN_DISTRIBUTION = "parley"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToolSource:
    """One entry point: where tools come from (`builtin` or the plugin's distribution)."""

    name: str
    origin: str
    target: Any

    def build(self, ctx: ToolContext) -> list[BaseTool]:
        return _as_tools(_call_factory(self.target, ctx), self.name)


@dataclass(frozen=True)
class LoadedTool:
    tool: BaseTool
    origin: str


def discover_sources(group: str = ENTRY_POINT_GROUP) -> list[ToolSource]:
    """Import every entry point of the group; one that fails is logged and skipped."""
    sources: list[ToolSource] = []
    for ep in entry_points(group=group):
        try:
            target = ep.load()
        except Exception:
            log.exception("tool plugin %r (%s) failed to import; skipped", ep.name, ep.value)
            continue
        sources.append(ToolSource(name=ep.name, origin=_origin(ep), target=target))
    return sources


def build_tools(sources: Iterable[ToolSource], ctx: ToolContext) -> list[LoadedTool]:
    """Build each source's tools for one context; duplicates by tool name keep the first
    (built-ins come first, so a plugin cannot silently replace one)."""
    ordered = sorted(sources, key=lambda s: (s.origin != "builtin", s.origin, s.name))
    tools: dict[str, LoadedTool] = {}
    for source in ordered:
        try:
            built = source.build(ctx)
        except Exception:
            log.exception("tool plugin %r (%s) failed to build; skipped", source.name,
                          source.origin)
            continue
        for tool in built:
            if tool.name in tools:
                log.warning("tool %r from %s ignored: the name is taken by %s", tool.name,
                            source.origin, tools[tool.name].origin)
                continue
            tools[tool.name] = LoadedTool(tool=tool, origin=source.origin)
    return list(tools.values())


def _origin(ep: EntryPoint) -> str:
    dist = ep.dist.name if ep.dist is not None else None
    if dist is None or dist.lower() == BUILTIN_DISTRIBUTION:
        return "builtin"
    return dist


def _call_factory(target: Any, ctx: ToolContext) -> Any:
    if isinstance(target, BaseTool) or not callable(target):
        return target
    factory: Callable[..., Any] = target
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return factory()
    required = [p for p in params.values()
                if p.default is inspect.Parameter.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return factory(ctx) if required or params else factory()


def _as_tools(value: Any, name: str) -> list[BaseTool]:
    items = value if isinstance(value, list | tuple) else [value]
    for item in items:
        if not isinstance(item, BaseTool):
            raise TypeError(f"entry point {name!r} gave {type(item).__name__}, not a tool")
    return list(items)
