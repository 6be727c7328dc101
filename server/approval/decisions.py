"""A person's decisions on a paused step, checked before the run goes on: each names a
waiting call (or there is one), is one of the allowed kinds, and an edit's arguments fit
the tool's schema. Problems are `Refused` with what to fix; the API answers 422.

Both APIs check with the same `check_decision`: `/chat` each decision as it comes (its
body translated to LangChain's human-in-the-loop form first), the Agent Protocol the
whole `{"decisions": [...]}` its client sends (`check_decisions`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field, model_validator

from graphs.approval import DECISIONS, decisions_by_call, edited_args
from server.approval.pending import Pending
from tools.approval import InvalidArguments, check_arguments

Kind = Literal["approve", "edit", "reject", "respond"]  # graphs.approval.DECISIONS


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


def body_decisions(body: DecisionsIn, pending: Pending, tools: Mapping[str, BaseTool],
                   earlier: Mapping[str, Mapping[str, Any]]
                   ) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """This body's decisions by call id, as the graph takes them (LangChain's
    human-in-the-loop form), each checked; and the tools approved with `always_allow`.
    `earlier`: the calls decided before, so a body that names no call decides the one
    still open."""
    waiting = {a["id"]: a for a in pending.request["action_requests"]}
    decided: dict[str, dict[str, Any]] = {}
    always: set[str] = set()
    for item in body.items():
        call_id = item.call_id
        if call_id is None and len(waiting) == 1:
            call_id = next(iter(waiting))  # the only call, decided before or not
        elif call_id is None:
            open_calls = [c for c in waiting if c not in earlier and c not in decided]
            if len(open_calls) != 1:
                raise Refused(f"{len(open_calls)} calls wait for a decision: name each "
                              f"one's call_id ({', '.join(open_calls)})")
            call_id = open_calls[0]
        action = waiting.get(call_id)
        if action is None:
            raise Refused(f"call {call_id!r} does not wait for a decision; these do: "
                          f"{', '.join(waiting)}")
        decided[call_id] = {"id": call_id, **check_decision(
            call_id, _graph_decision(item, action), action, tools)}
        if item.always_allow:
            always.add(action["name"])
    return decided, always


def _graph_decision(item: DecisionIn, action: Mapping[str, Any]) -> dict[str, Any]:
    """`/chat`'s decision in the graph's form; only translated (check_decision checks)."""
    decision: dict[str, Any] = {"type": item.decision}
    if item.decision == "edit":
        decision["edited_action"] = {"name": action["name"], "args": item.args}
    elif item.decision == "reject":
        reason = (item.reason or item.message or "").strip()
        if reason:
            decision["message"] = reason
    elif item.decision == "respond":
        decision["message"] = item.message
    return decision


def check_decision(call_id: str, decision: Mapping[str, Any], action: Mapping[str, Any],
                   tools: Mapping[str, BaseTool]) -> dict[str, Any]:
    """One call's decision in the graph's form, refused unless the graph can take it as
    the person meant it."""
    kind = decision.get("type")
    if kind not in DECISIONS:
        raise Refused(f"call {call_id!r}: a decision's `type` must be one of "
                      f"{', '.join(DECISIONS)}, not {kind!r}")
    if kind == "edit":
        tool = tools.get(action["name"])
        if tool is None:
            raise Refused(f"call {call_id!r}: the tool {action['name']!r} is gone from this "
                          "server, so an edit cannot run: reject the call instead")
        try:
            check_arguments(tool, edited_args(decision))
        except InvalidArguments as exc:
            raise Refused(f"{exc}; fix the edited arguments of call {call_id!r} or approve "
                          "it as it is") from exc
    if kind == "respond" and not str(decision.get("message") or "").strip():
        raise Refused(f"call {call_id!r}: respond needs `message`, the answer the model "
                      "gets instead")
    return dict(decision)


RESUME_FORM = ('resume with {"decisions": [{"type": "approve"}, ...]}: one decision per '
               "waiting call, in order or each with the call's `id`")


def check_decisions(resume: Any, pending: Pending, tools: Mapping[str, BaseTool]) -> None:
    """An Agent Protocol resume that answers the approval: LangChain's `{"decisions":
    [...]}` with one valid decision for every waiting call, or Refused (422), so no call
    is silently left undecided."""
    items = resume.get("decisions") if isinstance(resume, Mapping) else None
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise Refused(RESUME_FORM)
    call_ids = pending.call_ids
    decided = decisions_by_call(resume, pending.request)
    named = [str(i["id"]) for i in items if "id" in i]
    strangers = [c for c in named if c not in call_ids]
    if strangers:
        raise Refused(f"{', '.join(map(repr, strangers))} does not wait for a decision; "
                      f"these calls do: {', '.join(call_ids)}; {RESUME_FORM}")
    if len(items) > len(call_ids):
        raise Refused(f"{len(items)} decisions for {len(call_ids)} waiting call(s) "
                      f"({', '.join(call_ids)}); {RESUME_FORM}")
    missing = [c for c in call_ids if c not in decided]
    if missing:
        raise Refused(f"no decision for {', '.join(missing)}; {RESUME_FORM}")
    actions = {a["id"]: a for a in pending.request["action_requests"]}
    for call_id, decision in decided.items():
        check_decision(call_id, decision, actions[call_id], tools)
