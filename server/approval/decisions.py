"""A person's decisions on a paused step, checked before the run goes on: each names a
waiting call (or there is one), is one of the allowed kinds, and an edit's arguments fit
the tool's schema. Problems are `Refused` with what to fix; the API answers 422."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field, model_validator

from graphs.approval import decisions_by_call, edited_args
from server.approval.pending import Pending
from tools.approval import InvalidArguments, check_arguments

Kind = Literal["approve", "edit", "reject", "respond"]


class Refused(ValueError):
    """A decision the run cannot take; the message says what to fix."""


class DecisionIn(BaseModel):
    call_id: str | None = Field(
        default=None, description="The call decided (`calls[].call_id` of the approval); "
        "may be left out when only one call waits.")
    decision: Kind = Field(description="approve, edit (with `args`), reject (with an "
                           "optional `reason`) or respond (with `message`).")
    args: dict[str, Any] | None = Field(default=None, description="edit: the arguments to "
                                        "run the call with, checked against the tool's "
                                        "schema.")
    reason: str | None = Field(default=None, max_length=4000,
                               description="reject: why, for the model to read.")
    message: str | None = Field(default=None, max_length=100_000,
                                description="respond: the answer the model gets in the "
                                "tool's place (reject: the same as `reason`).")
    always_allow: bool = Field(default=False, description="approve: never ask me again "
                               "about this tool (revoke with DELETE "
                               "/chat/approvals/always-allow/{tool}).")

    @model_validator(mode="after")
    def _complete(self) -> DecisionIn:
        if self.decision == "edit" and self.args is None:
            raise ValueError("an edit needs `args`: the arguments to run the call with")
        if self.decision == "respond" and not (self.message or "").strip():
            raise ValueError("respond needs `message`: the answer the model gets instead")
        if self.always_allow and self.decision != "approve":
            raise ValueError("always_allow goes with decision 'approve' only")
        return self


class DecisionsIn(DecisionIn):
    """One decision, or `decisions` for several calls at once."""

    id: str | None = Field(default=None, description="The approval's id, to make sure "
                           "it is the one still waiting.")
    decision: Kind | None = None  # type: ignore[assignment]
    decisions: list[DecisionIn] | None = Field(default=None, max_length=100)

    # Not `_complete`: pydantic keeps validators by name, so reusing it would replace
    # DecisionIn's, and a single decision's own checks would not run.
    @model_validator(mode="after")
    def _one_or_many(self) -> DecisionsIn:
        if (self.decision is None) == (self.decisions is None):
            raise ValueError("send `decision` (one call) or `decisions` (a list), not "
                             "both or neither")
        return self

    def items(self) -> list[DecisionIn]:
        if self.decisions is not None:
            return list(self.decisions)
        # Checked already, when this body was parsed (DecisionIn's validator ran on it).
        return [DecisionIn.model_construct(**self.model_dump(
            include=set(DecisionIn.model_fields)))]


def resume_items(body: DecisionsIn, pending: Pending, tools: Mapping[str, BaseTool],
                 earlier: Mapping[str, dict[str, Any]]
                 ) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """The decisions so far by call id, as the graph takes them (graphs/approval.py),
    this body's added to `earlier` ones; and the tools approved with `always_allow`."""
    waiting = {a["id"]: a for a in pending.request["action_requests"]}
    decided = dict(earlier)
    always: set[str] = set()
    for item in body.items():
        call_id = item.call_id
        if call_id is None:
            open_calls = [c for c in waiting if c not in decided]
            if len(open_calls) != 1:
                raise Refused(f"{len(open_calls)} calls wait for a decision: name each "
                              f"one's call_id ({', '.join(open_calls)})")
            call_id = open_calls[0]
        action = waiting.get(call_id)
        if action is None:
            raise Refused(f"call {call_id!r} does not wait for a decision; these do: "
                          f"{', '.join(waiting)}")
        decided[call_id] = _graph_decision(item, call_id, action, tools)
        if item.always_allow:
            always.add(action["name"])
    return decided, always


def _graph_decision(item: DecisionIn, call_id: str, action: Mapping[str, Any],
                    tools: Mapping[str, BaseTool]) -> dict[str, Any]:
    decision: dict[str, Any] = {"id": call_id, "type": item.decision}
    if item.decision == "edit":
        tool = tools.get(action["name"])
        if tool is None:
            raise Refused(f"the tool {action['name']!r} is gone: reject the call instead")
        try:
            args = check_arguments(tool, item.args)
        except InvalidArguments as exc:
            raise Refused(f"{exc}; fix the arguments or approve the call as it is") from exc
        decision["edited_action"] = {"name": action["name"], "args": args}
    elif item.decision == "reject":
        reason = (item.reason or item.message or "").strip()
        if reason:
            decision["message"] = reason
    elif item.decision == "respond":
        decision["message"] = item.message
    return decision



def check_resume(resume: Any, pending: Pending, tools: Mapping[str, BaseTool]) -> None:
    """An Agent Protocol resume's edits fit their tools' schemas, so a bad one is refused
    (422) before the run, as `/chat`'s decisions are."""
    names = {a["id"]: a["name"] for a in pending.request["action_requests"]}
    for call_id, decision in decisions_by_call(resume, pending.request).items():
        if (decision.get("type") or decision.get("decision")) != "edit":
            continue
        tool = tools.get(names[call_id])
        if tool is None:
            continue  # the graph tells the model the edit could not run
        try:
            check_arguments(tool, edited_args(decision))
        except InvalidArguments as exc:
            raise Refused(f"{exc}; fix the edited arguments of call {call_id!r}") from exc
