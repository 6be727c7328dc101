"""Which calls wait for approval: the tool's metadata (`requires_approval`, set by plugins
and for the tools of MCP entries with `require_approval`), refined by the agent's spec."""

from __future__ import annotations

import pytest
from langchain_core.tools import BaseTool, tool
from pydantic import ValidationError

from agents.fake import ScriptedChatModel, say
from agents.spec import AgentSpec, ApprovalRules
from graphs.builder import build_graph
from graphs.deps import GraphDeps
from server.approval.policy import approval_deps, gated_tools
from server.approval.store import MemoryApprovalStore


def tools() -> list[BaseTool]:
    @tool
    def plain(x: int) -> int:
        """Plain."""
        return x

    @tool
    def plugin(x: int) -> int:
        """Declares it."""
        return x

    @tool
    def from_mcp(x: int) -> int:
        """As an MCP server's tool."""
        return x

    plugin.metadata = {"requires_approval": True}
    from_mcp.metadata = {"mcp_server": "files", "requires_approval": True}
    return [plain, plugin, from_mcp]


def spec(**approval: list[str]) -> AgentSpec:
    return AgentSpec(name="a", description="d", instructions="i", tools=["*"],
                     approval=ApprovalRules(**approval))


def test_tools_declare_it_and_agents_refine_it() -> None:
    assert gated_tools(spec(), tools()) == {"plugin", "from_mcp"}
    assert gated_tools(spec(require=["plain"], waive=["plugin"]), tools()) == {
        "plain", "from_mcp"}
    assert gated_tools(spec(require=["*"]), tools()) == {"plain", "plugin", "from_mcp"}
    assert gated_tools(spec(waive=["*"], require=["plugin"]), tools()) == {"plugin"}


def test_an_agent_without_waiting_tools_gets_no_review_step() -> None:
    store = MemoryApprovalStore()
    assert approval_deps(gated_tools(spec(waive=["*"]), tools()), store, seconds=5) is None
    deps = approval_deps(gated_tools(spec(), tools()), store, seconds=5)
    assert deps is not None and deps.seconds == 5
    model = ScriptedChatModel(script=[say("hi")])
    without = build_graph(GraphDeps(model=model, tools=tools(), approval=None))
    assert "review" not in without.nodes and "approve" not in without.nodes
    gated = build_graph(GraphDeps(model=model, tools=tools(), approval=deps))
    assert {"review", "approve"} <= set(gated.nodes)


def test_a_tool_in_both_lists_is_refused() -> None:
    with pytest.raises(ValidationError, match="both"):
        ApprovalRules(require=["x"], waive=["x"])
