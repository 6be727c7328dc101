"""The nodes of one turn: recall → agent ⇄ tools → remember (and a step-limit exit)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.runtime import Runtime

from graphs.approval import unanswered_calls
from graphs.context import TurnContext
from graphs.deps import GraphDeps
from graphs.errors import ModelCallFailed
from graphs.state import AgentState
from memory.window import fold_summary, plan_fold

ANONYMOUS = TurnContext()  # a run given no context: nobody's thread, nothing personal


def context_of(runtime: Runtime[TurnContext]) -> TurnContext:
    return runtime.context or ANONYMOUS


def current_turn(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    """The messages from the latest user message on: what this turn added."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].type == "human":
            return list(messages[index:])
    return list(messages)


def settle_unanswered(messages: Sequence[AnyMessage]) -> list[AnyMessage] | None:
    """The thread with a result for each call left waiting when the user wrote again
    instead of deciding on it (every call needs one before the model is called again);
    None when none waits."""
    new = len(messages)
    while new > 0 and messages[new - 1].type == "human":
        new -= 1
    waiting = unanswered_calls(messages[:new]) if new < len(messages) else []
    if not waiting:
        return None
    notes: list[AnyMessage] = [
        ToolMessage(content="Not run: the user wrote again instead of deciding on this "
                    "call.", tool_call_id=call["id"], name=call["name"], status="error")
        for call in waiting]
    return [*messages[:new], *notes, *messages[new:]]


def system_prompt(instructions: str, state: AgentState) -> SystemMessage:
    parts = [instructions]
    if state.get("context"):
        parts.append(f"What you know about this user:\n{state['context']}")
    if state.get("summary"):
        parts.append(f"Summary of the earlier conversation:\n{state['summary']}")
    return SystemMessage(content="\n\n".join(parts))


def make_nodes(deps: GraphDeps) -> dict[str, Any]:
    model: Runnable[Any, Any] | BaseChatModel = (
        deps.model.bind_tools(list(deps.tools)) if deps.tools else deps.model
    )

    async def recall(state: AgentState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
        recalled = await deps.recall(context_of(runtime), state["messages"])
        update: dict[str, Any] = {"context": recalled.context, "steps": 0,
                                  "approval": None, "decisions": {}}
        # The thread's state was lost (an expired or flushed Redis): its history goes
        # back before the new message. Either way, calls left waiting (a paused turn,
        # restored from history too) get a result before the model is called again.
        restored = [*recalled.restored, *state["messages"]] if recalled.restored else None
        messages = restored if restored is not None else state["messages"]
        settled = settle_unanswered(messages)
        if restored is not None or settled is not None:
            update["messages"] = [RemoveMessage(id=REMOVE_ALL_MESSAGES),
                                  *(settled if settled is not None else messages)]
        if recalled.summary is not None:
            update["summary"] = recalled.summary
        return update

    async def agent(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        prompt = [system_prompt(deps.instructions, state), *state["messages"]]
        try:
            reply = await model.ainvoke(prompt, config)
        except Exception as exc:  # named here: the runner tells the user the model failed
            raise ModelCallFailed(f"{type(exc).__name__}: {exc}") from exc
        return {"messages": [reply], "steps": state.get("steps", 0) + 1}

    async def step_limit(state: AgentState) -> dict[str, Any]:
        # Every tool call needs an answer before the model may be called again, so the
        # unrun calls get one, then the turn ends with a message that says why.
        last = state["messages"][-1]
        skipped: list[AnyMessage] = [
            ToolMessage(content="Not run: the step limit of this turn was reached.",
                        tool_call_id=call["id"], name=call["name"], status="error")
            for call in getattr(last, "tool_calls", [])
        ]
        note = AIMessage(content=(
            f"I stopped after {deps.max_steps} steps without a final answer. "
            "Try a simpler or more specific request."))
        return {"messages": [*skipped, note]}

    async def remember(state: AgentState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
        ctx = context_of(runtime)
        await deps.remember(ctx, current_turn(state["messages"]))
        if not deps.window_tokens or not ctx.persist:
            return {}
        # The answer has streamed already; now keep the thread's window within budget.
        plan = plan_fold(state["messages"], deps.window_tokens)
        update: dict[str, Any] = {"messages": list(plan.trimmed)}
        if plan.folded:
            update["summary"] = await fold_summary(deps.model, state.get("summary", ""),
                                                   plan.folded)
            update["messages"] += [RemoveMessage(id=m.id) for m in plan.folded if m.id]
        return update if update["messages"] else {}

    return {"recall": recall, "agent": agent, "step_limit": step_limit, "remember": remember}
