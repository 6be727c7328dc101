"""The summarizer tool: short texts in one model call; long ones split by tokens and
summarized map-reduce, so a text far past the model's context still works."""

from __future__ import annotations

import asyncio
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from langchain_text_splitters import RecursiveCharacterTextSplitter
from pydantic import BaseModel, Field

from tools.context import ToolContext

Style = Literal["bullets", "paragraph", "tldr"]
STYLES: dict[str, str] = {
    "bullets": "as a list of short bullet points ('- '), one idea each",
    "paragraph": "as one well-formed paragraph",
    "tldr": "as a single sentence starting with 'TL;DR:'",
}
CHARS_PER_TOKEN = 4  # an estimate that needs no tokenizer download; errs on the safe side


class SummarizeArgs(BaseModel):
    text: str = Field(min_length=1, description="The full text to summarize, any length.")
    style: Style = Field(default="paragraph",
                         description="bullets, paragraph or tldr (one sentence).")
    max_words: int | None = Field(default=None, ge=5, le=2000,
                                  description="Upper bound on the summary's length.")


def estimate_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


class Summarizer:
    def __init__(self, llm: BaseChatModel, *, chunk_tokens: int = 2000,
                 max_chars: int = 2_000_000, concurrency: int = 4) -> None:
        self.llm = llm
        self.chunk_tokens = chunk_tokens
        self.max_chars = max_chars
        self.limit = asyncio.Semaphore(concurrency)
        self.splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_tokens, chunk_overlap=chunk_tokens // 20,
            length_function=estimate_tokens)

    async def _ask(self, instruction: str, text: str) -> str:
        async with self.limit:
            reply = await self.llm.ainvoke([SystemMessage(instruction), HumanMessage(text)])
        return reply.text.strip()

    async def summarize(self, text: str, style: Style = "paragraph",
                        max_words: int | None = None) -> str:
        if not text.strip():
            raise ToolException("the text is empty: pass the text to summarize")
        if len(text) > self.max_chars:
            raise ToolException(f"the text has {len(text)} characters; the limit is "
                                f"{self.max_chars}: send a part of it")
        final = (f"Summarize the text {STYLES[style]}. Keep names, numbers and decisions. "
                 + (f"Use at most {max_words} words. " if max_words else "")
                 + "Answer with the summary only.")
        if estimate_tokens(text) <= self.chunk_tokens:
            return await self._ask(final, text)
        partials = await self._map(text)
        return await self._reduce(partials, final)

    async def _map(self, text: str) -> list[str]:
        chunks = self.splitter.split_text(text)
        note = ("This is part {i} of {n} of a longer text. Summarize this part in a few "
                "sentences, keeping names, numbers and decisions. Answer with the summary only.")
        return list(await asyncio.gather(*(
            self._ask(note.format(i=i + 1, n=len(chunks)), chunk)
            for i, chunk in enumerate(chunks))))

    async def _reduce(self, partials: list[str], final: str) -> str:
        # Collapse groups of partial summaries until they fit in one call.
        while estimate_tokens("\n\n".join(partials)) > self.chunk_tokens:
            groups: list[list[str]] = [[]]
            for summary in partials:
                if groups[-1] and estimate_tokens("\n\n".join([*groups[-1], summary])) > \
                        self.chunk_tokens:
                    groups.append([])
                groups[-1].append(summary)
            if len(groups) == len(partials):  # each summary alone is too long: shorten it
                groups = [[s] for s in partials]
            partials = list(await asyncio.gather(*(
                self._ask("Combine these partial summaries of one text into one shorter "
                          "summary. Answer with the summary only.", "\n\n".join(g))
                for g in groups)))
        return await self._ask(final, "Partial summaries of a long text, in order:\n\n"
                               + "\n\n".join(partials))


def summarizer_tools(ctx: ToolContext) -> list[BaseTool]:
    if ctx.llm is None:
        return []
    summarizer = Summarizer(ctx.llm, chunk_tokens=int(ctx.option("summarizer_chunk_tokens",
                                                                  2000)),
                            max_chars=int(ctx.option("summarizer_max_chars", 2_000_000)))

    async def summarize_text(text: str, style: Style = "paragraph",
                             max_words: int | None = None) -> str:
        return await summarizer.summarize(text, style, max_words)

    return [StructuredTool.from_function(
        coroutine=summarize_text, name="summarize_text", args_schema=SummarizeArgs,
        description="Summarize a text the user gives, of any length (articles, notes, "
                    "emails, whole documents): as bullets, one paragraph or a one-line tl;dr.",
        handle_tool_error=True,
        metadata={"examples": ["summarize this article", "tl;dr of this",
                               "key points of this memo", "shorten this paragraph for me",
                               "give me a brief summary of the text below"]})]
