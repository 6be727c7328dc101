"""Assemble the turn graph. `build_graph` returns the uncompiled builder so tests and the
server compile it with the checkpointer they want."""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from graphs.approval import after_review, make_approval_nodes, route_calls
from graphs.context import TurnContext
from graphs.deps import GraphDeps
from graphs.nodes import make_nodes
from graphs.state import AgentState, InputState
from graphs.tool_calls import make_tool_node

TurnBuilder = StateGraph[AgentState, TurnContext, InputState, AgentState]
TurnGraph = CompiledStateGraph[AgentState, TurnContext, InputState, AgentState]


def build_graph(deps: GraphDeps) -> TurnBuilder:
    nodes = make_nodes(deps)
    builder = StateGraph(AgentState, context_schema=TurnContext, input_schema=InputState)
    builder.add_node("recall", nodes["recall"])
    builder.add_node("agent", nodes["agent"])
    builder.add_node("tools", make_tool_node(deps.tools, timeout=deps.tool_timeout))
    builder.add_node("step_limit", nodes["step_limit"])
    builder.add_node("remember", nodes["remember"])

    # An agent with tools that may wait for approval reviews each step's calls first; the
    # others go straight to the tool node, a step fewer.
    calls = "review" if deps.approval is not None else "tools"

    def after_agent(state: AgentState) -> Literal["tools", "review", "step_limit", "remember"]:
        last = state["messages"][-1]
        if not getattr(last, "tool_calls", None):
            return "remember"
        if state.get("steps", 0) >= deps.max_steps:
            return "step_limit"
        return calls  # type: ignore[return-value]

    builder.add_edge(START, "recall")
    builder.add_edge("recall", "agent")
    builder.add_conditional_edges("agent", after_agent,
                                  [calls, "step_limit", "remember"])
    if deps.approval is not None:
        approval = make_approval_nodes(deps.tools, deps.approval)
        builder.add_node("review", approval["review"])
        builder.add_node("approve", approval["approve"])
        builder.add_conditional_edges("review", after_review, ["approve", "tools", "agent"])
        builder.add_conditional_edges("approve", route_calls, ["tools", "agent"])
    builder.add_edge("tools", "agent")
    builder.add_edge("step_limit", "remember")
    builder.add_edge("remember", END)
    return builder
