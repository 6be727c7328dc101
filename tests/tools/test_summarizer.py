"""The summarizer with a scripted model: one call for short texts, map-reduce for long."""

from __future__ import annotations

import re

import pytest
from langchain_core.messages import AIMessage, BaseMessage

from agents.fake import ScriptedChatModel, say
from tools.context import ToolContext
from tools.summarizer import estimate_tokens, summarizer_tools


def recording_model() -> ScriptedChatModel:
    """Answers map calls with 'summary of part i' and anything else with 'FINAL'."""

    def answer(messages: list[BaseMessage]) -> AIMessage:
        system = messages[0].text
        match = re.search(r"part (\d+) of (\d+)", system)
        if match:
            return say(f"summary of part {match.group(1)}")
        if "Combine these partial summaries" in system:
            return say("combined")
        return say("FINAL")

    return ScriptedChatModel(script=[answer], cycle=True)


def tool_with(model: ScriptedChatModel, **options: object):  # type: ignore[no-untyped-def]
    return summarizer_tools(ToolContext(llm=model, options=options))[0]


async def test_a_short_text_takes_one_call_with_the_style() -> None:
    model = recording_model()
    result = await tool_with(model).ainvoke({"text": "The cat sat on the mat.",
                                             "style": "bullets", "max_words": 20})
    assert result == "FINAL"
    assert len(model.calls) == 1
    system, human = model.calls[0]
    assert "bullet points" in system.text and "at most 20 words" in system.text
    assert human.text == "The cat sat on the mat."


async def test_a_fifty_page_text_is_mapped_then_reduced() -> None:
    model = recording_model()
    page = " ".join(f"Sentence {i} of the report says something about topic {i % 7}."
                    for i in range(60))
    text = "\n\n".join(page for _ in range(50))  # about 50 pages
    result = await tool_with(model, summarizer_chunk_tokens=2000).ainvoke(
        {"text": text, "style": "tldr"})
    maps = [c for c in model.calls if "part " in c[0].text and " of " in c[0].text
            and "Partial summaries" not in c[1].text]
    assert result == "FINAL"
    assert len(maps) == len([c for c in model.calls if re.search(r"part \d+ of", c[0].text)])
    assert len(maps) >= estimate_tokens(text) // 2000
    for call in maps:  # every chunk fits the model's budget
        assert estimate_tokens(call[1].text) <= 2000
    final = model.calls[-1]
    assert "TL;DR" in final[0].text
    assert "summary of part 1" in final[1].text and f"summary of part {len(maps)}" in final[1].text


async def test_many_partial_summaries_are_collapsed_before_the_end() -> None:
    def long_summaries(messages: list[BaseMessage]) -> AIMessage:
        system = messages[0].text
        if re.search(r"part \d+ of", system):
            return say("x" * 400)  # 100 tokens each
        if "Combine these partial summaries" in system:
            return say("combined")
        return say("FINAL")

    model = ScriptedChatModel(script=[long_summaries], cycle=True)
    text = "word " * 40_000  # ~50k tokens, 100 chunks of 500
    result = await tool_with(model, summarizer_chunk_tokens=500).ainvoke({"text": text})
    assert result == "FINAL"
    combines = [c for c in model.calls if "Combine these partial" in c[0].text]
    assert combines and all(estimate_tokens(c[1].text) <= 500 for c in combines)


@pytest.mark.parametrize(("args", "message"), [
    ({"text": "   "}, "the text is empty"),
    ({"text": "x" * 101}, "the limit is 100"),
])
async def test_refusals_are_clear_and_cost_no_call(args: dict, message: str) -> None:
    model = recording_model()
    result = await tool_with(model, summarizer_max_chars=100).ainvoke(args)
    assert message in result
    assert model.calls == []


async def test_a_failing_model_gives_a_clear_tool_error() -> None:
    from graphs.tool_calls import describe_error

    def broken(_messages: list[BaseMessage]) -> AIMessage:
        raise TimeoutError("model timed out")

    tool = tool_with(ScriptedChatModel(script=[broken]))
    with pytest.raises(TimeoutError) as caught:
        await tool.ainvoke({"text": "hello"})
    # The graph's tool node turns it into this message to the model.
    assert "took too long" in describe_error(caught.value)


def test_no_model_no_tool() -> None:
    assert summarizer_tools(ToolContext(llm=None)) == []
