"""Folding with a model: the folded messages and the earlier summary reach the summarizer,
whose answer becomes the new running summary, while the kept window stays in budget."""

from __future__ import annotations

from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from agents.fake import ScriptedChatModel
from memory.window import SUMMARY_PROMPT, fold_summary, plan_fold, tokens


def conversation() -> list[AnyMessage]:
    call = {"name": "get_weather", "args": {"place": "Lyon"}, "id": "c1"}
    filler = "word " * 60
    return [HumanMessage("My sister Alice lives in Lyon and was born in 1984.", id="h0"),
            AIMessage("Noted!", id="a0"),
            HumanMessage("What is the weather there?", id="h1"),
            AIMessage("", tool_calls=[call], id="a1"),
            ToolMessage("Lyon: 14 C, light rain " + filler, tool_call_id="c1", id="t1"),
            AIMessage("Light rain, 14 C.", id="a2"),
            HumanMessage("Tell me a story " + filler, id="h2"),
            AIMessage("Once upon a time " + filler, id="a3"),
            HumanMessage("And another " + filler, id="h3"),
            AIMessage("Long ago " + filler, id="a4")]


def summarizer(messages: list[AnyMessage]) -> AIMessage:
    # Stands in for a real model: keeps the fact only if it was actually given the fact.
    prompt = str(messages[-1].content)
    fact = "Alice (sister) lives in Lyon, born 1984." if "Alice lives in Lyon" in prompt else ""
    return AIMessage(f"Earlier: user prefers metric units. {fact}".strip())


async def test_the_summary_carries_facts_from_the_folded_messages() -> None:
    messages = conversation()
    budget = tokens(messages[-4:]) + 10
    plan = plan_fold(messages, budget, keep_last=4)
    folded_ids = [m.id for m in plan.folded]
    assert folded_ids[:2] == ["h0", "a0"]
    assert ("a1" in folded_ids) == ("t1" in folded_ids)  # a call stays with its result
    kept = messages[len(plan.folded):]
    assert tokens(kept) <= budget and not isinstance(kept[0], ToolMessage)

    model = ScriptedChatModel(script=[summarizer])
    summary = await fold_summary(model, "user prefers metric units", plan.folded)
    assert "Alice (sister) lives in Lyon, born 1984." in summary
    [sent] = model.calls
    assert isinstance(sent[0], SystemMessage) and sent[0].content == SUMMARY_PROMPT
    assert "user prefers metric units" in str(sent[1].content)  # the earlier summary merges
    assert "called get_weather({'place': 'Lyon'})" in str(sent[1].content)
    for word in ("names", "numbers", "preferences"):
        assert word in SUMMARY_PROMPT
