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
    # The routes that run turns come first: a request is matched against the routes in
    # this order, and a turn should not pay for trying every page and resource first.
    for router in (chat.router, openai.router, agent_protocol.router, approvals.router,
                   threads.router, login.router, reports.router, memories.router,
                   health.router, metrics.router, catalog.router, web.router):
        app.include_router(router)
    web.mount(app)
    add_agent_routes(app, agent_names)
