"""`/mcp`: Parley's agents as an MCP server (streamable HTTP), behind Parley's auth.

Each agent is a tool `ask_<agent>(message, thread_id?)` whose turn goes through the one
runner, like `/chat`'s: the same auth (an access token or a personal API key), rate limit,
turn slots, logging and metrics; a thread id names a thread of the caller's only (the
checkpointer keys threads by their owner), so another user's id starts a new thread.
`search_memories(query, limit?)` searches the caller's long-term memories.

The MCP SDK's server runs stateless (every request carries its own token; no session for
another user to take over, nothing to share between replicas); its session manager runs
in the app's lifespan. The caller, checked here before the SDK sees the request, reaches
the tools in the request's state."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import aclosing, asynccontextmanager, contextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from langchain_core.messages import HumanMessage
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import BaseModel, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from agents.spec import AgentSpec
from server import caller, logs
from server.api import deps
from server.api.chat import ChatRequest, resolve_agent, turn_of
from server.api.thread_hold import hold_thread, releasing
from server.approval import waiting_text
from server.runner import Answer, Failed, Interrupted, ToolFinished
from services.tokens import Principal

log = logging.getLogger(__name__)

PATH = "/mcp"
MEMORY_RESULTS_MAX = 50


class AgentAnswer(BaseModel):
    answer: str = Field(description="The agent's final answer.")
    thread_id: str = Field(description="Send it back as thread_id to continue the thread.")
    agent: str
    turn_id: str
    tools_used: list[str] = Field(default_factory=list,
                                  description="The tools the agent called, in order.")


class FoundMemory(BaseModel):
    id: str
    text: str
    score: float
    created_at: str | None = None


@contextmanager
def _root_logging_kept() -> Iterator[None]:
    """FastMCP's constructor calls `logging.basicConfig` with a rich handler at INFO: in a
    process whose root logger has no handler yet (tests, an embedding app), every INFO line
    of every library would then be rendered by rich, at a cost per line."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


class McpFace:
    """The `/mcp` endpoint; a FastMCP server and its session manager for each run of the
    app's lifespan (the SDK's session manager runs once per instance, and an app may be
    started again, as tests do)."""

    def __init__(self, specs: Mapping[str, AgentSpec]) -> None:
        self.specs = dict(specs)
        self.manager: StreamableHTTPSessionManager | None = None

    def build(self) -> FastMCP:
        with _root_logging_kept():
            server = FastMCP(
                name="parley",
                instructions="Parley's agents, each a tool ask_<agent>; pass the thread_id "
                             "an answer gives to continue that conversation. "
                             "search_memories searches what Parley remembers about you.",
                stateless_http=True,
                # Parley has its own origin checks (server.csrf), runs behind any host name.
                transport_security=TransportSecuritySettings(
                    enable_dns_rebinding_protection=False),
            )
        for name, spec in sorted(self.specs.items()):
            server.add_tool(
                _ask_tool(name), name=f"ask_{name}",
                description=f"Ask Parley's {name!r} agent: {spec.description}".strip(),
                structured_output=True)
        server.add_tool(
            search_memories, name="search_memories",
            description="Search what Parley remembers about you (your long-term memories), "
                        "best match first.", structured_output=True)
        return server

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        server = self.build()
        server.streamable_http_app()  # makes the session manager
        manager = server.session_manager
        async with manager.run():
            self.manager = manager
            try:
                yield
            finally:
                self.manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate, then hand the request to the SDK. The principal and token are
        kept in the request's state, which the SDK's request context carries."""
        request = Request(scope, receive)
        try:
            await deps.current_user(request)
        except HTTPException as exc:
            response = JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                                    headers=exc.headers)
            await response(scope, receive, send)
            return
        manager = self.manager
        if manager is None:
            starting = JSONResponse({"detail": "the server is starting"}, status_code=503,
                                    headers={"Retry-After": "2"})
            await starting(scope, receive, send)
            return
        await manager.handle_request(scope, receive, send)


def mount(app: FastAPI, specs: Mapping[str, AgentSpec]) -> McpFace:
    """Serve `/mcp` on `app`; the caller runs `face.running()` in the app's lifespan."""
    face = McpFace(specs)
    app.router.routes.append(Route(PATH, endpoint=face, methods=["GET", "POST", "DELETE"],
                                   include_in_schema=False))
    return face


def _caller(ctx: Context[Any, Any, Any]) -> tuple[Request, Principal]:
    request = ctx.request_context.request
    principal = getattr(request.state, "principal", None) if request is not None else None
    if not isinstance(request, Request) or principal is None:
        # Auth off: the one local user (deps.current_user answered it without a token).
        if isinstance(request, Request):
            return request, deps.LOCAL_USER
        raise ToolError("this tool is served over HTTP only")
    # The request's own context variables may not reach the SDK's task: set them again.
    caller.access_token.set(getattr(request.state, "access_token", None))
    logs.user_id.set(principal.user_id)
    return request, principal


def _refusal(exc: HTTPException) -> ToolError:
    retry = (exc.headers or {}).get("Retry-After")
    return ToolError(f"{exc.detail}" + (f" (retry after {retry} s)" if retry and
                                        "try again" not in str(exc.detail) else ""))


def _ask_tool(agent: str) -> Any:
    async def ask(message: str, ctx: Context[Any, Any, Any],
                  thread_id: str | None = None) -> AgentAnswer:
        return await ask_agent(ctx, agent, message, thread_id)

    ask.__doc__ = f"Ask the {agent} agent."
    return ask


async def ask_agent(ctx: Context[Any, Any, Any], agent: str, message: str,
                    thread_id: str | None) -> AgentAnswer:
    """One turn of `agent` on a thread of the caller's, through the runner."""
    request, user = _caller(ctx)
    try:
        body = ChatRequest(message=message, thread_id=thread_id, agent=agent)
    except ValidationError as exc:
        raise ToolError("; ".join(str(e["msg"]).removeprefix("Value error, ")
                                  for e in exc.errors())) from exc
    try:
        platform = await deps.get_platform(request)
        runner = await deps.get_runner(request)
        chosen = resolve_agent(platform, body)
        await deps.enforce_rate_limit(request, user)
        profile = await deps.get_profile(request, user)
        turn = turn_of(body, user.user_id, profile)
        protocol = await deps.find_protocol(request)
        async with deps.turn_admitted(request):
            answer, tools_used, failed = None, [], None
            release = await hold_thread(protocol, user.user_id, turn.thread_id, turn.turn_id,
                                        new_thread=turn.new_thread)
            events = releasing(runner.stream(chosen.graph, turn, [HumanMessage(body.message)],
                                             tokens=False), release)
            async with aclosing(events):
                async for event in events:
                    if isinstance(event, Answer):
                        answer = event.content
                    elif isinstance(event, Interrupted):  # the thread waits for approval
                        answer = waiting_text(event.interrupts, turn.thread_id)
                    elif isinstance(event, ToolFinished):
                        tools_used.append(event.tool)
                    elif isinstance(event, Failed):
                        failed = event
    except HTTPException as exc:
        raise _refusal(exc) from exc
    if failed is not None:
        raise ToolError(f"the turn failed ({failed.kind}): {failed.message}")
    return AgentAnswer(answer=str(answer or ""), thread_id=turn.thread_id, agent=agent,
                       turn_id=turn.turn_id, tools_used=tools_used)


async def search_memories(query: str, ctx: Context[Any, Any, Any], limit: int = 5
                          ) -> list[FoundMemory]:
    """Search your long-term memories by meaning and words."""
    request, user = _caller(ctx)
    if not query.strip():
        raise ToolError("query is empty: give words to search for")
    if not 1 <= limit <= MEMORY_RESULTS_MAX:
        raise ToolError(f"limit must be 1 to {MEMORY_RESULTS_MAX}")
    try:
        platform = await deps.get_platform(request)
    except HTTPException as exc:
        raise _refusal(exc) from exc
    if platform.memory is None:
        raise ToolError("long-term memory is off on this server (PARLEY_MEMORY_ENABLED)")
    found = await platform.memory.search(user.user_id, query[:2000], k=limit)
    return [FoundMemory(id=m.record.id, text=m.record.text, score=round(m.score, 4),
                        created_at=m.record.created_at.isoformat()
                        if m.record.created_at else None)
            for m in found]
