"""The translator with a scripted model: languages, detection, formatting, code blocks."""

from __future__ import annotations

from langchain_core.messages import AIMessage, BaseMessage

from agents.fake import ScriptedChatModel, say
from tools.context import ToolContext
from tools.translator import split_code, translator_tools


def french_model() -> ScriptedChatModel:
    def answer(messages: list[BaseMessage]) -> AIMessage:
        text = messages[1].text.strip()
        return say("Source: English\n" + text.replace("Hello", "Bonjour")
                   .replace("world", "monde").replace("Steps", "Étapes"))

    return ScriptedChatModel(script=[answer], cycle=True)


def tool_with(model: ScriptedChatModel):  # type: ignore[no-untyped-def]
    return translator_tools(ToolContext(llm=model))[0]


async def test_translates_and_reports_the_source_language() -> None:
    model = french_model()
    result = await tool_with(model).ainvoke({"text": "Hello world", "target_language": "fr"})
    assert result == "Translated from English to French:\n\nBonjour monde"
    assert "into French" in model.calls[0][0].text


async def test_names_and_codes_both_work() -> None:
    for target in ("French", "FR", "french "):
        result = await tool_with(french_model()).ainvoke({"text": "Hello",
                                                          "target_language": target})
        assert "to French" in result


async def test_code_blocks_come_back_byte_identical() -> None:
    code = "```python\nprint('Hello world')  # keep me\n\n    x = 1\n```"
    text = f"# Steps\n\n- Hello world\n- second\n\n{code}\n\nHello again\n"
    model = french_model()
    result = await tool_with(model).ainvoke({"text": text, "target_language": "French"})
    body = result.split("\n\n", 1)[1]
    assert code in body
    assert body.startswith("# Étapes\n\n- Bonjour monde\n- second\n\n")
    assert body.endswith("\n\nBonjour again\n")
    assert all("print(" not in call[1].text for call in model.calls)  # code never sent


async def test_unknown_language_is_refused_without_a_model_call() -> None:
    model = french_model()
    result = await tool_with(model).ainvoke({"text": "Hello", "target_language": "xx"})
    assert "unknown target language 'xx'" in result and "ISO 639-1" in result
    assert model.calls == []


async def test_empty_text_is_refused() -> None:
    model = french_model()
    result = await tool_with(model).ainvoke({"text": "  \n", "target_language": "de"})
    assert "the text is empty" in result and model.calls == []


def test_split_code_round_trips() -> None:
    text = "a\n```\nb\n```\nc\n```js\nd\n```"
    parts = split_code(text)
    assert "".join(p for _, p in parts) == text
    assert [is_code for is_code, _ in parts] == [False, True, False, True]


def test_languages_own_names_and_locales_are_understood() -> None:
    from tools.languages import resolve_language

    assert resolve_language("français") == resolve_language("fr-CA") == "French"
    assert resolve_language("Español") == "Spanish" and resolve_language("pt_BR") == "Portuguese"
    assert resolve_language("it-italy") == "Italian"
    assert resolve_language("Deutsch") == "German" and resolve_language("xx-YY") is None
