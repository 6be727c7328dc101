"""The translator tool: into a named language, the source detected, formatting kept.

Fenced code blocks never reach the model: the text is cut around them, the prose parts are
translated, and the code goes back in place byte for byte.
"""

from __future__ import annotations

import asyncio
import re

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field

from tools.context import ToolContext
from tools.languages import resolve_language

_FENCE = re.compile(r"(^```.*?^```[ \t]*$)", re.MULTILINE | re.DOTALL)
_SOURCE = re.compile(r"^\s*source\s*(?:language)?\s*:\s*(?P<lang>[^\n]+)\n?", re.IGNORECASE)


class TranslateArgs(BaseModel):
    text: str = Field(min_length=1, description="The text to translate.")
    target_language: str = Field(description="Language to translate into: a name like "
                                             "'German' or an ISO 639-1 code like 'de'.")


def split_code(text: str) -> list[tuple[bool, str]]:
    """(is_code, part) pieces; joining the parts gives the text back exactly."""
    return [(bool(_FENCE.fullmatch(part)), part) for part in _FENCE.split(text) if part]


class Translator:
    def __init__(self, llm: BaseChatModel) -> None:
        self.llm = llm

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
        results = await asyncio.gather(*(
            asyncio.sleep(0, result=(part, None)) if is_code else self._translate(part, target)
            for is_code, part in parts))
        sources = [s for _, s in results if s]
        source = sources[0] if sources else "unknown"
        return f"Translated from {source} to {target}:\n\n" + "".join(t for t, _ in results)


def translator_tools(ctx: ToolContext) -> list[BaseTool]:
    if ctx.llm is None:
        return []
    translator = Translator(ctx.llm)

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
