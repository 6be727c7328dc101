"""The HTTP API: every route of the agent server. Each module is one face or resource;
the chat faces (chat, LangServe, OpenAI-compatible) only format the turn runner's events.
Dependencies come from `deps` as `Annotated` aliases."""

from __future__ import annotations

from fastapi import FastAPI

from server.api import (
    agent_protocol,
    approvals,
    catalog,
    chat,
    health,
    login,
    memories,
    metrics,
    openai,
    reports,
    threads,
    web,
)
from server.api.langserve import add_agent_routes


def include_routes(app: FastAPI, agent_names: list[str]) -> None:
    for router in (login.router, reports.router, memories.router, health.router,
                   metrics.router, catalog.router, chat.router, approvals.router,
                   openai.router, threads.router, agent_protocol.router, web.router):
        app.include_router(router)
    web.mount(app)
    add_agent_routes(app, agent_names)
