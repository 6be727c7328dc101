"""The short-term window of a thread: keep it under a token budget by trimming old tool
results first, then folding the oldest messages into a running summary.

Pure planning functions here; the graph's remember node applies the plan with the model.
A fold never separates an AI message that calls tools from the results of those calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.utils import count_tokens_approximately

TRIMMED = "[old tool result removed to save space]"

SUMMARY_PROMPT = (
    "You keep the running summary of a conversation. Merge the earlier summary with the new "
    "messages into one concise summary. Keep every fact about the user (names, places, "
    "preferences, numbers, dates, decisions) and open questions; drop pleasantries. "
    "Answer with the summary only.")


@dataclass(frozen=True)
class FoldPlan:
    trimmed: list[ToolMessage]  # replacements for old tool results (same ids)
    folded: list[AnyMessage]  # the oldest messages, to move into the summary


def tokens(messages: Sequence[AnyMessage]) -> int:
    return count_tokens_approximately(list(messages))


def plan_fold(messages: Sequence[AnyMessage], budget: int, keep_last: int = 4) -> FoldPlan:
    """What to trim and fold so the window fits `budget` tokens; the last `keep_last`
    messages always stay as they are."""
    messages = list(messages)
    if tokens(messages) <= budget:
        return FoldPlan([], [])
    protected = max(0, len(messages) - max(1, keep_last))
    trimmed: list[ToolMessage] = []
    window = list(messages)
    for i, message in enumerate(messages[:protected]):
        if isinstance(message, ToolMessage) and message.content != TRIMMED:
            replacement = message.model_copy(update={"content": TRIMMED})
            trimmed.append(replacement)
            window[i] = replacement
            if tokens(window) <= budget:
                return FoldPlan(trimmed, [])
    # Cut where the kept window does not start with tool results: a tool call and its
    # results stay together on one side.
    valid = [c for c in range(1, protected + 1) if not isinstance(window[c], ToolMessage)]
    if not valid:
        return FoldPlan(trimmed, [])
    cut = next((c for c in valid if tokens(window[c:]) <= budget), valid[-1])
    folded = window[:cut]
    folded_ids = {m.id for m in folded}
    return FoldPlan([t for t in trimmed if t.id not in folded_ids], folded)


def render(messages: Sequence[AnyMessage]) -> str:
    lines = []
    for m in messages:
        who = {"human": "User", "ai": "Assistant", "tool": f"Tool {getattr(m, 'name', '')}"}
        text = m.text if m.text else "; ".join(
            f"called {c['name']}({c['args']})" for c in getattr(m, "tool_calls", []))
        lines.append(f"{who.get(m.type, m.type)}: {text}")
    return "\n".join(lines)


async def fold_summary(model: BaseChatModel, summary: str, folded: Sequence[AnyMessage]
                       ) -> str:
    prompt = f"Earlier summary:\n{summary or '(none)'}\n\nNew messages:\n{render(folded)}"
    reply = await model.ainvoke([SystemMessage(SUMMARY_PROMPT), HumanMessage(prompt)])
    return reply.text.strip()
