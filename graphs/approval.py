"""Tool approval in the graph: calls that need a person wait for their decision.

    agent → review → approve (interrupt) → tools (the calls still to run) → agent

`review` decides once which of the step's calls wait (the agent's gated tools, less those
the user always allows) and keeps the request, with its expiry, in the state; `approve`
pauses the run with LangGraph's `interrupt()` (nothing has run; the checkpoint holds the
request) and, on resume, applies the decisions: approve, edit (new arguments, checked
against the tool's schema), reject (the reason becomes the call's result), respond (the
person's answer becomes it). A decision that comes after the expiry is a rejection.

The request follows LangChain's human-in-the-loop schema (`action_requests`,
`review_configs`), which agent-chat-ui renders, with the call id in each action request;
the resume value is `{"decisions": [...]}`, one per call, in order or by `id`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from langchain_core.messages import AIMessage, AnyMessage, ToolCall, ToolMessage
from langchain_core.tools import BaseTool
from langgraph.runtime import Runtime
from langgraph.types import Send, interrupt

from graphs.context import TurnContext
from graphs.deps import ApprovalDeps
from graphs.state import AgentState
from tools.approval import InvalidArguments, check_arguments

KIND = "parley.tool_approval"  # marks Parley's approval requests among interrupts
DECISIONS = ("approve", "edit", "reject", "respond")
APPROVAL_META = "approval"  # the decision's record on the call's ToolMessage


def is_approval_request(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("kind") == KIND


def last_ai(messages: Sequence[AnyMessage]) -> tuple[int, AIMessage | None]:
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, AIMessage):
            return index, message
    return -1, None


def unanswered_calls(messages: Sequence[AnyMessage]) -> list[ToolCall]:
    """The last model step's calls that have no result yet."""
    index, ai = last_ai(messages)
    if ai is None:
        return []
    answered = {m.tool_call_id for m in messages[index + 1:] if isinstance(m, ToolMessage)}
    return [call for call in ai.tool_calls if call["id"] not in answered]


def route_calls(state: AgentState) -> list[Send] | Literal["agent"]:
    """Each call still to run goes to the tool node on its own; none left: the model reads
    the results."""
    pending = unanswered_calls(state["messages"])
    if not pending:
        return "agent"
    return [Send("tools", {"__type": "tool_call_with_context", "tool_call": call,
                           "state": state}) for call in pending]


def after_review(state: AgentState) -> list[Send] | Literal["approve", "agent"]:
    return "approve" if state.get("approval") else route_calls(state)


def make_approval_nodes(tools: Sequence[BaseTool], deps: ApprovalDeps) -> dict[str, Any]:
    by_name = {tool.name: tool for tool in tools}

    async def review(state: AgentState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
        ctx = runtime.context or TurnContext()
        calls = [c for c in unanswered_calls(state["messages"])
                 if c["name"] in deps.gated and c["name"] in by_name]
        if calls:
            allowed = set(await deps.always_allowed(ctx.user_id))
            calls = [c for c in calls if c["name"] not in allowed]
        if not calls:
            return {"approval": None}
        return {"approval": approval_request(calls, by_name, ctx, seconds=deps.seconds)}

    async def approve(state: AgentState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
        request = state.get("approval")
        if not request:
            return {}
        answer = interrupt(request)
        ctx = runtime.context or TurnContext()
        return apply_decisions(state["messages"], request, answer, by_name,
                               user_id=ctx.user_id)

    return {"review": review, "approve": approve}


def approval_request(calls: Sequence[ToolCall], tools: Mapping[str, BaseTool],
                     ctx: TurnContext, *, seconds: float) -> dict[str, Any]:
    expires = datetime.now(UTC) + timedelta(seconds=seconds)
    return {
        "kind": KIND,
        "action_requests": [{"id": c["id"], "name": c["name"], "args": c["args"],
                             "description": tools[c["name"]].description} for c in calls],
        "review_configs": [{"action_name": name, "allowed_decisions": list(DECISIONS)}
                           for name in dict.fromkeys(c["name"] for c in calls)],
        "agent": ctx.agent,
        "turn_id": ctx.turn_id,
        "expires_at": expires.isoformat(),
    }


def expired(request: Mapping[str, Any], now: datetime | None = None) -> bool:
    return (now or datetime.now(UTC)) >= datetime.fromisoformat(request["expires_at"])


def decisions_by_call(answer: Any, request: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The decision for each call id, from LangChain's `{"decisions": [...]}` (the only
    form the APIs send): by `id` where the decisions name their calls, else in the order
    of the request's `action_requests` (LangChain's convention). The APIs refuse a resume
    that leaves a call undecided; here such a call gets no decision."""
    items = answer.get("decisions") if isinstance(answer, Mapping) else None
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        return {}
    ids = [a["id"] for a in request["action_requests"]]
    if items and all("id" in item for item in items):
        return {str(item["id"]): dict(item) for item in items if item["id"] in ids}
    return {call_id: dict(item) for call_id, item in zip(ids, items, strict=False)}


def apply_decisions(messages: Sequence[AnyMessage], request: Mapping[str, Any],
                    answer: Any, tools: Mapping[str, BaseTool], *,
                    user_id: str) -> dict[str, Any]:
    """The state update the decisions make: edited calls in the model's message, the
    rejected and answered calls' results, and each decision's record."""
    _, ai = last_ai(messages)
    assert ai is not None  # review found the calls in it
    decided = decisions_by_call(answer, request)
    late = expired(request)
    at = datetime.now(UTC).isoformat()
    calls = list(ai.tool_calls)
    results: list[AnyMessage] = []
    records: dict[str, dict[str, Any]] = {}
    for action in request["action_requests"]:
        call_id = action["id"]
        index = next((i for i, c in enumerate(calls) if c["id"] == call_id), None)
        if index is None:
            continue
        decision = decided.get(call_id, {})
        kind = str(decision.get("type") or "")
        record: dict[str, Any] = {"decision": kind, "by": user_id, "at": at}
        outcome: str | None = None  # the call's result when it does not run
        if late:
            record = {**record, "decision": "reject", "expired": True}
            outcome = (f"Not run: the approval of this call to {action['name']} expired "
                       "before the user decided. Tell the user it was not done.")
        elif kind == "approve":
            pass
        elif kind == "edit":
            try:
                args = check_arguments(tools[action["name"]], edited_args(decision))
            except (InvalidArguments, KeyError) as exc:
                record["invalid"] = str(exc)
                outcome = f"Not run: the user's edit of this call was invalid ({exc})."
            else:
                calls[index] = {**calls[index], "args": args}
                record["args"] = args
        elif kind == "reject":
            reason = str(decision.get("message") or "").strip()
            record["reason"] = reason or None
            outcome = (f"The user rejected this call to {action['name']}; it did not run."
                       + (f" Their reason: {reason}" if reason else
                          " Do not try it again unless they ask for it."))
        elif kind == "respond":
            outcome = str(decision.get("message") or "")
            record["message"] = outcome
        else:
            record["decision"] = "reject"
            outcome = "Not run: no decision on this call was given."
        records[call_id] = record
        if outcome is not None:
            results.append(ToolMessage(
                content=outcome, name=action["name"], tool_call_id=call_id,
                status="success" if kind == "respond" and not late else "error",
                response_metadata={APPROVAL_META: record}))
    update: dict[str, Any] = {"approval": None, "decisions": records}
    edited = calls != list(ai.tool_calls)
    update["messages"] = ([ai.model_copy(update={"tool_calls": calls})] if edited else []) \
        + results
    return update


def edited_args(decision: Mapping[str, Any]) -> Any:
    edited = decision.get("edited_action")
    return edited.get("args") if isinstance(edited, Mapping) else None
