"""The translator tool: into a named language, the source detected, formatting kept.

Fenced code blocks never reach the model: the text is cut around them, the prose parts are
translated, and the code goes back in place byte for byte.

With the option `translation="apertium"` (what PARLEY_TRANSLATION=auto means with the
embedded model of `make run`) a pair Apertium has installed (English to Spanish, French,
Italian, Portuguese and back) is translated offline by it (tools/apertium.py), since the
small local model cannot translate; any other pair, or a failing Apertium, goes to the
chat model. The output names the engine.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field

from tools.apertium import shared_engine
from tools.context import ToolContext
from tools.language_guess import guess_language
from tools.languages import LANGUAGES, resolve_language

log = logging.getLogger(__name__)
_FENCE = re.compile(r"(^```.*?^```[ \t]*$)", re.MULTILINE | re.DOTALL)
_SOURCE = re.compile(r"^\s*source\s*(?:language)?\s*:\s*(?P<lang>[^\n]+)\n?", re.IGNORECASE)


class TranslateArgs(BaseModel):
    text: str = Field(min_length=1, description="The text to translate.")
    target_language: str = Field(description="Language to translate into: a name like "
                                             "'German' or an ISO 639-1 code like 'de'.")


def split_code(text: str) -> list[tuple[bool, str]]:
    """(is_code, part) pieces; joining the parts gives the text back exactly."""
    return [(bool(_FENCE.fullmatch(part)), part) for part in _FENCE.split(text) if part]


class OfflineEngine(Protocol):
    """What the translator needs of an offline engine (tools.apertium.ApertiumEngine)."""

    name: str

    def supports(self, source: str, target: str) -> bool: ...

    def translate(self, text: str, source: str, target: str) -> str: ...


_CODES = {name: code for code, name in LANGUAGES.items()}


class Translator:
    def __init__(self, llm: BaseChatModel, offline: OfflineEngine | None = None) -> None:
        self.llm = llm
        self.offline = offline  # None: the chat model translates everything

    async def _offline(self, parts: list[tuple[bool, str]], target: str) -> str | None:
        """The text translated by the offline engine, or None when it has no such pair."""
        assert self.offline is not None
        prose = "\n".join(part for is_code, part in parts if not is_code)
        source, target_code = guess_language(prose), _CODES.get(target)
        if target_code is None or not self.offline.supports(source, target_code):
            return None
        engine = self.offline
        try:
            pieces = [part if is_code else await asyncio.to_thread(
                engine.translate, part, source, target_code) for is_code, part in parts]
        except Exception:  # the engine broke (a timeout, a crash): the model translates
            log.warning("offline translation failed; using the chat model", exc_info=True)
            return None
        return (f"Translated from {LANGUAGES[source]} to {target} by {engine.name} "
                "(offline machine translation; the source language was guessed from "
                "its common words):\n\n" + "".join(pieces))

    async def _translate(self, prose: str, target: str) -> tuple[str, str | None]:
        if not prose.strip():
            return prose, None
        instruction = (
            f"Translate the user's text into {target}. Keep the formatting exactly: line "
            "breaks, lists, headings, emphasis, inline code and links. On the first line "
            "write 'Source: <the language of the original>', then the translation only.")
        reply = (await self.llm.ainvoke([SystemMessage(instruction), HumanMessage(prose)])).text
        match = _SOURCE.match(reply)
        source = match.group("lang").strip() if match else None
        translated = reply[match.end():] if match else reply
        # Keep the surrounding blank lines of the part, which join it to the code blocks.
        lead = prose[: len(prose) - len(prose.lstrip())]
        tail = prose[len(prose.rstrip()):]
        return lead + translated.strip() + tail, source

    async def translate(self, text: str, target_language: str) -> str:
        target = resolve_language(target_language)
        if target is None:
            raise ToolException(
                f"unknown target language {target_language!r}: use a name like 'German' or "
                "an ISO 639-1 code like 'de'")
        if not text.strip():
            raise ToolException("the text is empty: pass the text to translate")
        parts = split_code(text)
        if self.offline is not None:
            offline = await self._offline(parts, target)
            if offline is not None:
                return offline
        results = await asyncio.gather(*(
            asyncio.sleep(0, result=(part, None)) if is_code else self._translate(part, target)
            for is_code, part in parts))
        sources = [s for _, s in results if s]
        source = sources[0] if sources else "unknown"
        engine = "" if self.offline is None else (
            f" by the chat model ({self.offline.name} has no offline pair for this)")
        return (f"Translated from {source} to {target}{engine}:\n\n"
                + "".join(t for t, _ in results))


def translator_tools(ctx: ToolContext) -> list[BaseTool]:
    if ctx.llm is None:
        return []
    # "auto": Apertium where it has the pair, the model otherwise; "model" (the default
    # when the platform passes nothing): the model only. The engine starts on first use.
    offline = shared_engine() if ctx.option("translation", "model") == "apertium" else None
    translator = Translator(ctx.llm, offline)

    async def translate_text(text: str, target_language: str) -> str:
        return await translator.translate(text, target_language)

    return [StructuredTool.from_function(
        coroutine=translate_text, name="translate_text", args_schema=TranslateArgs,
        description="Translate a text into another language (name or ISO code), detecting "
                    "the source language and keeping lists and code blocks intact.",
        handle_tool_error=True,
        metadata={"examples": ["translate 'cheese' to French", "say 'good luck' in Korean",
                               "put this in Spanish", "how do you say hello in Greek",
                               "translate the following into Polish"]})]
