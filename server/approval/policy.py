"""Which of an agent's calls wait for the user: the tool's own declaration (plugins' and
MCP servers' metadata), refined by the agent's spec, less the tools the user always
allows. The graph gets the result as `ApprovalDeps`."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.tools import BaseTool

from agents.spec import AgentSpec
from graphs.deps import ApprovalDeps
from server.approval.store import ApprovalStore
from tools.approval import declares_approval


def gated_tools(spec: AgentSpec, tools: Sequence[BaseTool]) -> frozenset[str]:
    return frozenset(t.name for t in tools
                     if spec.approval.needs(t.name, declared=declares_approval(t)))


def approval_deps(gated: frozenset[str], store: ApprovalStore, *,
                  seconds: float) -> ApprovalDeps | None:
    """None when no tool of the agent can wait (`gated`, from `gated_tools`): its graph
    then has no review step."""
    if not gated:
        return None
    return ApprovalDeps(gated=gated, always_allowed=store.always_allowed, seconds=seconds)
