"""MCP servers as a source of LangChain tools, through LangChain's own MCP adapters.

At start each configured server is connected and its tools listed; one that is down, slow
or misbehaving is logged and skipped, and tried again every `retry_seconds` until its
tools arrive (the platform then rebuilds its agents). A call goes through an interceptor
of the adapters that

- picks the calling user from the run (`config["configurable"]["user_id"]`),
- adds that user's own credential for the server when the entry asks for one (never
  another user's: a user without one gets an error message, not a shared credential),
- on a stateful server uses the (server, user) session kept open by a task of its own,
  dropped when a call through it fails so the next call connects anew,
- turns a transport failure into a `ToolException` naming the server, which the tool node
  hands to the model as an error message, never a failed turn.

Calls get no timeout of their own: the tool node gives every tool call the tool timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from langchain_core.tools import BaseTool, ToolException
from langchain_mcp_adapters.interceptors import MCPToolCallRequest, MCPToolCallResult
from langchain_mcp_adapters.sessions import Connection, create_session
from langchain_mcp_adapters.tools import _list_all_tools, convert_mcp_tool_to_langchain_tool
from mcp import ClientSession

from tools.approval import APPROVAL_KEY
from tools.mcp_servers.config import HttpServer, StdioServer
from tools.registry import ToolSource

log = logging.getLogger(__name__)

# (user_id, server) -> the user's credential for that server, or None when they set none.
CredentialLookup = Callable[[str, str], Awaitable[str | None]]
Handler = Callable[[MCPToolCallRequest], Awaitable[MCPToolCallResult]]
ORIGIN_PREFIX = "mcp:"


class McpCallError(ToolException):
    """A call that did not reach the tool: what the model reads."""


def connection_of(entry: StdioServer | HttpServer, *, timeout: float,
                  headers: dict[str, str] | None = None) -> Connection:
    """The adapters' connection config for an entry (with extra `headers` for HTTP)."""
    if isinstance(entry, StdioServer):
        stdio: dict[str, Any] = {"transport": "stdio", "command": entry.command,
                                 "args": list(entry.args)}
        if entry.env is not None:
            stdio["env"] = dict(entry.env)
        if entry.cwd is not None:
            stdio["cwd"] = entry.cwd
        return stdio  # type: ignore[return-value]
    return {"transport": "streamable_http", "url": entry.url,
            "headers": {**entry.headers, **(headers or {})}, "timeout": timeout}


def reason(exc: BaseException) -> str:
    """The innermost error of an exception group, in words."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return str(exc) or type(exc).__name__


@dataclass
class _Held:
    """A session kept open by a task of its own: anyio's cancel scopes inside the MCP
    client must be left by the task that entered them, not by whichever call is last."""

    session: ClientSession
    task: asyncio.Task[None]
    stop: asyncio.Event
    connection: Connection  # what it was opened with (the user's credential included)

    @property
    def alive(self) -> bool:
        return not self.task.done()


async def _hold(connection: Connection, ready: asyncio.Future[ClientSession],
                stop: asyncio.Event) -> None:
    try:
        async with create_session(connection) as session:
            await session.initialize()
            ready.set_result(session)
            await stop.wait()
    except BaseException as exc:
        if not ready.done():
            ready.set_exception(exc if isinstance(exc, Exception) else
                                ConnectionError(reason(exc)))
        elif not isinstance(exc, asyncio.CancelledError):
            log.info("an MCP session ended: %s", reason(exc))
        if isinstance(exc, asyncio.CancelledError):
            raise


@dataclass
class SessionPool:
    """One open session per (server, user) for stateful servers, closed on shutdown."""

    open_timeout: float
    _held: dict[tuple[str, str], _Held] = field(default_factory=dict)
    _locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    _closing: bool = False

    async def session(self, server: str, user: str, connection: Connection) -> ClientSession:
        key = (server, user)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            held = self._held.get(key)
            if held is not None and held.alive and held.connection == connection:
                return held.session
            if held is not None:  # ended, or the user's credential changed: open anew
                self.discard(server, user, held.session)
            if self._closing:
                raise McpCallError("the server is shutting down")
            ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
            stop = asyncio.Event()
            task = asyncio.create_task(_hold(connection, ready, stop),
                                       name=f"mcp-session:{server}")
            try:
                session = await asyncio.wait_for(asyncio.shield(ready), self.open_timeout)
            except BaseException:
                task.cancel()
                raise
            self._held[key] = _Held(session=session, task=task, stop=stop,
                                    connection=connection)
            return session

    def discard(self, server: str, user: str, session: ClientSession) -> None:
        """Drop a session a call failed on: the next call opens a new one."""
        held = self._held.get((server, user))
        if held is not None and held.session is session:
            del self._held[(server, user)]
            held.stop.set()

    def count(self, server: str | None = None) -> int:
        return sum(1 for (name, _user), held in self._held.items()
                   if held.alive and (server is None or name == server))

    async def aclose(self, grace: float = 5.0) -> None:
        self._closing = True
        held, self._held = list(self._held.values()), {}
        for one in held:
            one.stop.set()
        tasks = [one.task for one in held]
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=grace)


def caller_of(runtime: Any) -> str:
    """The user a tool call runs for: the run's context (Parley's TurnContext) or, outside
    a graph's tool runtime, the run's config. Never from the model's arguments."""
    context = getattr(runtime, "context", None)
    user = getattr(context, "user_id", None)
    if not user:
        config = getattr(runtime, "config", None)
        if config is None:
            from langgraph.config import get_config

            with contextlib.suppress(RuntimeError):
                config = get_config()
        user = ((config or {}).get("configurable") or {}).get("user_id")
    return str(user) if user else "anonymous"


@dataclass
class McpTools:
    """The configured MCP servers' tools, and their sessions."""

    servers: dict[str, StdioServer | HttpServer]
    timeout: float = 30.0  # connecting and listing; calls: the tool node's timeout
    retry_seconds: float = 30.0
    credentials: CredentialLookup | None = None
    tools: dict[str, list[BaseTool]] = field(default_factory=dict)  # by server, once listed
    pool: SessionPool = field(init=False)

    def __post_init__(self) -> None:
        self.pool = SessionPool(open_timeout=self.timeout)

    @property
    def missing(self) -> list[str]:
        return [name for name in self.servers if name not in self.tools]

    async def start(self) -> None:
        """Connect to every server at once and list its tools; failures are logged."""
        await asyncio.gather(*(self.connect(name) for name in self.missing))

    async def connect(self, name: str) -> bool:
        entry = self.servers[name]
        try:
            async with asyncio.timeout(self.timeout):
                listed = await self._list(name, entry)
        except Exception as exc:
            log.warning("MCP server %r is unavailable, its tools are skipped for now (tried "
                        "again every %g s): %s", name, self.retry_seconds,
                        "no answer in time" if isinstance(exc, TimeoutError) else reason(exc))
            return False
        self.tools[name] = listed
        log.info("MCP server %r: %d tools (%s)", name, len(listed),
                 ", ".join(t.name for t in listed))
        return True

    async def _list(self, name: str, entry: StdioServer | HttpServer) -> list[BaseTool]:
        connection = connection_of(entry, timeout=self.timeout)
        async with create_session(connection) as session:
            await session.initialize()
            described = await _list_all_tools(session)
        built = []
        for tool in described:
            converted = convert_mcp_tool_to_langchain_tool(
                None, tool, connection=connection, server_name=name,
                tool_interceptors=[self._intercept])
            converted.metadata = {**(converted.metadata or {}), "mcp_server": name,
                                  APPROVAL_KEY: entry.require_approval}
            built.append(converted)
        return built

    def sources(self) -> list[ToolSource]:
        """The tool sources of the servers listed so far, `mcp:<server>` each."""
        return [ToolSource(name=name, origin=f"{ORIGIN_PREFIX}{name}", target=list(tools))
                for name, tools in sorted(self.tools.items())]

    @asynccontextmanager
    async def retrying(self, on_new_tools: Callable[[], Any]) -> AsyncIterator[None]:
        """While open, try the servers that are down again every `retry_seconds`, and
        call `on_new_tools` when one of them lists its tools."""
        task = asyncio.create_task(self._retry(on_new_tools), name="mcp-retry")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _retry(self, on_new_tools: Callable[[], Any]) -> None:
        while self.missing:
            await asyncio.sleep(self.retry_seconds)
            joined = await asyncio.gather(*(self.connect(name) for name in self.missing))
            if any(joined):
                try:
                    on_new_tools()
                except Exception:
                    log.exception("could not add the tools of a returning MCP server")

    async def aclose(self) -> None:
        await self.pool.aclose()

    async def _intercept(self, request: MCPToolCallRequest, handler: Handler
                         ) -> MCPToolCallResult:
        name = request.server_name
        entry = self.servers[name]
        user = caller_of(request.runtime)
        headers = await self._user_headers(name, entry, user)
        try:
            if entry.stateful:
                return await self._call_kept(name, entry, user, request, headers)
            return await handler(request.override(headers=headers) if headers else request)
        except (ToolException, asyncio.CancelledError):
            raise
        except Exception as exc:
            log.warning("MCP tool %s of server %r failed: %s", request.name, name, reason(exc))
            raise McpCallError(f"the MCP server {name!r} could not run {request.name}: "
                               f"{reason(exc)}") from exc

    async def _call_kept(self, name: str, entry: StdioServer | HttpServer, user: str,
                         request: MCPToolCallRequest, headers: dict[str, str] | None
                         ) -> MCPToolCallResult:
        connection = connection_of(entry, timeout=self.timeout, headers=headers)
        session = await self.pool.session(name, user, connection)
        try:
            return await session.call_tool(request.name, request.args)
        except BaseException:
            # The session may be broken (the server restarted, the call was cut off by
            # the timeout): the next call opens a new one.
            self.pool.discard(name, user, session)
            raise

    async def _user_headers(self, name: str, entry: StdioServer | HttpServer, user: str
                            ) -> dict[str, str] | None:
        if not isinstance(entry, HttpServer) or entry.user_credential is None:
            return None
        credential = None
        if self.credentials is not None and user != "anonymous":
            try:
                credential = await self.credentials(user, name)
            except Exception as exc:
                raise McpCallError(f"your credential for the MCP server {name!r} could not "
                                   f"be read: {reason(exc)}") from exc
        if not credential:
            raise McpCallError(f"the MCP server {name!r} needs your own credential: set it "
                               f"with PUT /auth/mcp-credentials/{name}")
        wanted = entry.user_credential
        return {wanted.header: f"{wanted.prefix}{credential}"}
