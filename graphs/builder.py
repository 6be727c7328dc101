"""Assemble the turn graph. `build_graph` returns the uncompiled builder so tests and the
server compile it with the checkpointer they want."""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

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

    def after_agent(state: AgentState) -> Literal["tools", "step_limit", "remember"]:
        last = state["messages"][-1]
        if not getattr(last, "tool_calls", None):
            return "remember"
        if state.get("steps", 0) >= deps.max_steps:
            return "step_limit"
        return "tools"

    builder.add_edge(START, "recall")
    builder.add_edge("recall", "agent")
    builder.add_conditional_edges("agent", after_agent)
    builder.add_edge("tools", "agent")
    builder.add_edge("step_limit", "remember")
    builder.add_edge("remember", END)
    return builder
