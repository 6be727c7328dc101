"""Planning the window: tool results trimmed first, then the oldest folded, pairs kept."""

from __future__ import annotations

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from memory.window import TRIMMED, plan_fold, tokens


def talk(n: int, size: int = 40) -> list:  # type: ignore[type-arg]
    messages: list[BaseMessage] = []
    for i in range(n):
        messages.append(HumanMessage(f"question {i} " + "word " * size, id=f"h{i}"))
        messages.append(AIMessage(f"answer {i} " + "word " * size, id=f"a{i}"))
    return messages


def test_nothing_to_do_within_budget() -> None:
    messages = talk(2)
    plan = plan_fold(messages, tokens(messages) + 1)
    assert plan.trimmed == [] and plan.folded == []


def test_old_tool_results_go_first() -> None:
    call = {"name": "get_weather", "args": {}, "id": "c1"}
    messages = [HumanMessage("weather?", id="h0"), AIMessage("", tool_calls=[call], id="a0"),
                ToolMessage("x " * 400, tool_call_id="c1", id="t0"), AIMessage("Sunny", id="a1"),
                *talk(2, size=5)]
    budget = tokens(messages) - 150  # the tool result alone is about 200 tokens
    plan = plan_fold(messages, budget)
    assert [t.id for t in plan.trimmed] == ["t0"] and plan.trimmed[0].content == TRIMMED
    assert plan.folded == []


def test_the_oldest_fold_and_calls_stay_with_their_results() -> None:
    call = {"name": "get_weather", "args": {}, "id": "c1"}
    messages = [*talk(3), HumanMessage("weather?", id="hx"),
                AIMessage("", tool_calls=[call], id="ax"),
                ToolMessage("sunny", tool_call_id="c1", id="tx"), AIMessage("Sunny", id="ay"),
                *talk(2, size=5)]
    for budget in range(50, tokens(messages), 25):
        plan = plan_fold(messages, budget, keep_last=4)
        folded = [m.id for m in plan.folded]
        assert folded == [m.id for m in messages[:len(folded)]]  # a prefix
        if "ax" in folded:
            assert "tx" in folded  # never a call without its result
        kept = messages[len(folded):]
        assert kept and not isinstance(kept[0], ToolMessage)
        assert len(kept) >= 4  # the latest exchange stays whole
    tight = plan_fold(messages, 60, keep_last=4)
    assert len(tight.folded) == len(messages) - 4
