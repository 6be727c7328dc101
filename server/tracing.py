"""LangSmith tracing: LangChain turns it on by itself from LangSmith's variables (see
Settings.langsmith_*); Parley only says at start whether it is on, and, on shutdown,
waits for the last traces to be sent instead of dropping them."""

from __future__ import annotations

import asyncio

from server.settings import Settings


def tracing_status(settings: Settings) -> str:
    if not settings.langsmith_tracing:
        return "LangSmith tracing off (set LANGSMITH_TRACING=true and LANGSMITH_API_KEY)"
    return (f"LangSmith tracing on: project {settings.langsmith_project!r} at "
            f"{settings.langsmith_endpoint}")


async def flush_traces(settings: Settings) -> None:
    if not settings.langsmith_tracing:
        return
    from langchain_core.tracers.langchain import wait_for_all_tracers

    await asyncio.to_thread(wait_for_all_tracers)
