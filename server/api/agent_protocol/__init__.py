"""The Agent Protocol (LangGraph Server's API) as LangGraph's own clients use it:
`langgraph_sdk`, `@langchain/langgraph-sdk` and its `useStream`, agent-chat-ui. What is
implemented and what is not: docs/agent-protocol.md."""

from __future__ import annotations

from fastapi import APIRouter

from server.api.agent_protocol import assistants, info, runs, threads

router = APIRouter()
for part in (info.router, assistants.router, threads.router, runs.turns, runs.router):
    router.include_router(part)
