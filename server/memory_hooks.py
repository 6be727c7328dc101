"""The graph's recall and remember, as the server composes them: the user's profile and
their relevant long-term memories in; new facts about the user and the turn out."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from langchain_core.messages import AnyMessage

from graphs.deps import Recalled, RecallFn, RememberFn, TurnContext
from memory.prompts import is_personal_fact, render_memories, render_profile
from memory.semantic import SemanticMemory

log = logging.getLogger(__name__)


Forgotten = Callable[[str, str], Awaitable[bool]]  # (user id, thread id): deleted lately


def make_recall(memory: SemanticMemory | None, *, k: int, min_score: float,
                history: Any = None, forgotten: Forgotten | None = None,
                observe: Callable[[float], None] | None = None) -> RecallFn:
    async def recall(ctx: TurnContext, messages: Sequence[AnyMessage]) -> Recalled:
        restored: list[AnyMessage] = []
        if history is not None and ctx.persist and not ctx.new_thread and len(messages) == 1:
            # A new checkpoint for a thread the history service knows: Redis lost it, or
            # the user deleted the thread, whose transcript may not be gone from history
            # yet (its deletion goes down the turn stream): that one starts afresh.
            try:
                if forgotten is None or not await forgotten(ctx.user_id, ctx.thread_id):
                    restored = await history.thread_messages(ctx.user_id, ctx.thread_id)
            except Exception:
                log.exception("could not rebuild the thread from history")
        parts = [render_profile(dict(ctx.profile or {}))]
        question = messages[-1].text if messages and messages[-1].type == "human" else ""
        if memory is not None and question:
            started = time.perf_counter()
            try:
                found = await memory.search(ctx.user_id, question, k=k, min_score=min_score)
                if observe is not None:
                    observe(time.perf_counter() - started)
            except Exception:
                log.exception("memory recall failed; answering without it")
                found = []
            parts.append(render_memories((m.record.created_at, m.record.text) for m in found))
        return Recalled(context="\n\n".join(p for p in parts if p), restored=restored)

    return recall


def make_remember(memory: SemanticMemory | None) -> RememberFn:
    async def remember(ctx: TurnContext, messages: Sequence[AnyMessage]) -> None:
        if memory is None or not messages or messages[0].type != "human":
            return
        said = messages[0].text.strip()
        answer = messages[-1].text.strip() if messages[-1].type == "ai" else ""
        try:
            if is_personal_fact(said):
                await memory.add(ctx.user_id, [said], {"kind": "fact",
                                                       "thread_id": ctx.thread_id})
            elif answer and ctx.persist:
                # The exchange itself, so a later question in any thread can find it. It is
                # found by its question: recall embedded that already (a cache hit here), so
                # a turn runs the embedding model once, not twice.
                exchange = f"Q: {said[:200]}\nA: {answer[:160]}"
                await memory.add(ctx.user_id, [exchange], {"kind": "exchange",
                                                           "thread_id": ctx.thread_id},
                                 keys=[said[:360]])
        except Exception:
            log.exception("could not store a memory; the turn goes on")

    return remember
