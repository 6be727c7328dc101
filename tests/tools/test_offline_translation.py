"""Offline translation with the real Apertium (Debian's packages, .ci/system-tools): the
translator with PARLEY_TRANSLATION=auto, its warm pipelines, and the fall back to the
chat model. The sentences are tests/tools/translation_cases.jsonl, not the eval's."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, BaseMessage

from agents.fake import ScriptedChatModel, say
from server.settings import Settings
from tests.support.system import ROOT, require
from tools.apertium import ApertiumEngine, ApertiumError, Pipeline, route
from tools.context import ToolContext
from tools.language_guess import guess_language
from tools.translator import Translator, translator_tools

CASES = [json.loads(line) for line in
         Path(__file__).with_name("translation_cases.jsonl").read_text().splitlines() if line]


def plain(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower())
                   if not unicodedata.combining(c))


@pytest.fixture(scope="module")
def engine():  # type: ignore[no-untyped-def]
    # One call each, so the system tools' list test sees every name asked for.
    require("apertium")
    require("apertium-eng-spa")
    require("apertium-fr-es")
    require("apertium-es-pt")
    require("apertium-spa-ita")
    engine = ApertiumEngine()
    yield engine
    engine.close()


def german_model() -> ScriptedChatModel:
    """Stands in for the chat model: only the pairs Apertium lacks should reach it."""
    def answer(messages: list[BaseMessage]) -> AIMessage:
        return say("Source: English\n" + messages[1].text.strip().replace("Good morning",
                                                                          "Guten Morgen"))

    return ScriptedChatModel(script=[answer], cycle=True)


async def test_a_pair_is_direct_or_goes_through_spanish() -> None:
    modes = {"eng-spa", "spa-eng", "es-fr", "fr-es", "spa-ita"}
    assert route("en", "es", modes) == ["eng-spa"]
    assert route("en", "fr", modes) == ["eng-spa", "es-fr"]
    assert route("fr", "en", modes) == ["fr-es", "spa-eng"]
    assert route("en", "de", modes) is None and route("en", "pt", modes) is None
    assert route("en", "en", modes) is None


@pytest.mark.parametrize("case", CASES, ids=[f"{c['target']}-{c['text'][:20]}" for c in CASES])
async def test_english_sentences_are_translated_offline(engine: ApertiumEngine,
                                                        case: dict[str, object]) -> None:
    model = german_model()
    translator = Translator(model, engine)
    result = await translator.translate(str(case["text"]), str(case["target"]))
    header, _, body = result.partition(":\n\n")
    assert header.startswith("Translated from English to ") and "by Apertium" in header
    assert all(word in plain(body) for word in case["expect"]), body  # type: ignore[attr-defined]
    assert model.calls == []  # the chat model was not asked


async def test_markdown_and_inline_code_are_kept(engine: ApertiumEngine) -> None:
    text = ("# The house\n\n- The dog is **black**.\n- Run `make test` in the garden.\n"
            "  1. Read [the book](https://example.com/the/book?x=1).\n")
    body = (await Translator(german_model(), engine).translate(text, "es")).split(":\n\n", 1)[1]
    lines = body.split("\n")
    assert lines[0] == "# La casa" and lines[1] == "" and lines[-1] == ""
    assert lines[2].startswith("- El perro") and "**negro**" in lines[2]
    assert lines[3].startswith("- ") and "`make test`" in lines[3] and "jardín" in lines[3]
    assert lines[4].startswith("  1. ") and "(https://example.com/the/book?x=1)" in lines[4]


async def test_fenced_code_is_not_touched(engine: ApertiumEngine) -> None:
    code = "```python\n# The dog is black\nprint('the house')  # <b> $x\n```"
    text = f"The dog is black.\n\n{code}\n\nThe house has a red door.\n"
    body = (await Translator(german_model(), engine).translate(text, "fr")).split(":\n\n", 1)[1]
    assert body == f"Le chien est noir.\n\n{code}\n\nLa maison a une porte rouge.\n"


async def test_a_pair_apertium_lacks_goes_to_the_chat_model(engine: ApertiumEngine) -> None:
    model = german_model()
    result = await Translator(model, engine).translate("Good morning, my friend.", "German")
    assert result == ("Translated from English to German by the chat model (Apertium has no "
                      "offline pair for this):\n\nGuten Morgen, my friend.")
    assert len(model.calls) == 1


async def test_the_source_language_is_guessed(engine: ApertiumEngine) -> None:
    assert guess_language("hello") == "en" and guess_language("Good morning.") == "en"
    assert guess_language("Le chien est dans le jardin.") == "fr"
    result = await Translator(german_model(), engine).translate(
        "El perro duerme en el jardín.", "English")
    assert result.startswith("Translated from Spanish to English by Apertium")
    assert "dog" in result and "garden" in result


async def test_translation_model_keeps_everything_on_the_model() -> None:
    model = german_model()
    settings = Settings(translation="model")
    tool = translator_tools(ToolContext(llm=model, options=settings.tool_options()))[0]
    result = await tool.ainvoke({"text": "Good morning", "target_language": "es"})
    assert result == "Translated from English to Spanish:\n\nGuten Morgen"
    assert len(model.calls) == 1
    # "auto", the default: Apertium with the embedded model (`make run`), which cannot
    # translate; the chat model with any other, which translates better than Apertium.
    assert Settings().tool_options()["translation"] == "apertium"
    assert Settings(llm="fake").tool_options()["translation"] == "model"
    assert Settings(llm="local:/models/other.gguf").tool_options()["translation"] == "apertium"
    assert Settings(llm="fake", translation="apertium").tool_options()["translation"] == \
        "apertium"


async def test_the_tool_translates_offline_by_default_settings(engine: ApertiumEngine) -> None:
    model = german_model()
    tool = translator_tools(ToolContext(llm=model, options=Settings().tool_options()))[0]
    result = await tool.ainvoke({"text": "We eat bread and cheese.", "target_language": "it"})
    assert "by Apertium" in result and "formaggio" in result and model.calls == []


def test_a_dead_pipeline_is_restarted(engine: ApertiumEngine) -> None:
    assert engine.translate("The dog is black.", "en", "es") == "El perro es negro."
    pipeline = engine._pipeline("eng-spa")
    assert pipeline._proc is not None
    os.killpg(pipeline._proc.pid, signal.SIGKILL)  # every stage of it
    pipeline._proc.wait()
    assert engine.translate("The house has a red door.", "en", "es") == \
        "La casa tiene una puerta roja."
    assert pipeline._proc is not None and pipeline._proc.poll() is None


async def test_concurrent_translations_do_not_mix(engine: ApertiumEngine) -> None:
    texts = [c["text"] for c in CASES if c["target"] == "fr"] * 6 + \
        [f"The dog number {n} is sleeping." for n in range(12)]
    alone = [engine.translate(t, "en", "fr") for t in texts]
    together = await asyncio.gather(*(asyncio.to_thread(engine.translate, t, "en", "fr")
                                      for t in texts))
    assert list(together) == alone
    assert all(f" {n} " in alone[-12 + n] for n in range(12))


def test_a_pipeline_that_does_not_answer_times_out() -> None:
    pipeline = Pipeline("cat > /dev/null", timeout=0.5)  # reads, never replies
    started = time.monotonic()
    with pytest.raises(ApertiumError, match=r"no reply within 0\.5 s"):
        pipeline(b"hello")
    assert time.monotonic() - started < 5
    pipeline.close()


async def test_a_broken_engine_falls_back_to_the_model() -> None:
    class Broken:
        name = "Apertium"

        def supports(self, source: str, target: str) -> bool:
            return True

        def translate(self, text: str, source: str, target: str) -> str:
            raise ApertiumError("apertium failed: the pipeline exited")

    model = german_model()
    result = await Translator(model, Broken()).translate("Good morning", "fr")
    assert result.endswith("Guten Morgen") and len(model.calls) == 1


def test_nothing_is_read_or_started_at_import() -> None:
    code = ("import subprocess, pathlib\n"
            "def refuse(*a, **k): raise AssertionError('started at import')\n"
            "subprocess.Popen = refuse; pathlib.Path.glob = refuse\n"
            "import tools.apertium, tools.translator\n"
            "from tools.context import ToolContext\n"
            "tools.translator.translator_tools(ToolContext(llm=object(), "
            "options={'translation': 'apertium'}))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert result.returncode == 0, result.stderr
