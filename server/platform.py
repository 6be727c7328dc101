"""The composition root's product: agents compiled into graphs, with their models, tools and
stores, built once at start-up from the settings and closed at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from agents.catalog import load_agents
from agents.providers import ModelOptions, make_chat_model, parse_provider
from agents.spec import AgentSpec
from graphs.builder import TurnGraph, build_graph
from graphs.deps import GraphDeps
from memory.redis_checkpointer import RedisStringSaver
from memory.semantic import SemanticMemory
from server.approval import ApprovalStore, approval_deps, approval_store
from server.approval.policy import gated_tools
from server.memory_hooks import make_recall, make_remember
from server.runner.history import Publish, turn_publisher
from server.settings import Settings
from services.history.stream import deletion_queued
from tools.context import ToolContext
from tools.mcp_servers import McpTools, load_servers
from tools.registry import LoadedTool, ToolSource, build_tools, discover_sources

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Agent:
    spec: AgentSpec
    model: BaseChatModel
    tools: list[LoadedTool]
    graph: TurnGraph  # threads kept by the checkpointer (`/chat`)
    stateless_graph: TurnGraph  # the client sends the conversation (LangServe, OpenAI)
    gated: frozenset[str] = frozenset()  # its tools whose calls wait for approval

    @cached_property
    def tools_by_name(self) -> dict[str, BaseTool]:
        """For checking a person's edit of a call against the tool's schema."""
        return {t.tool.name: t.tool for t in self.tools}


@dataclass
class Platform:
    settings: Settings
    agents: dict[str, Agent]
    tool_sources: list[ToolSource]
    checkpointer: BaseCheckpointSaver
    redis: Any = None
    memory: SemanticMemory | None = None
    publish: Publish | None = None  # finished turns to the history service's stream
    mcp: McpTools | None = None  # the MCP servers lending tools, and their sessions
    # Tool approval's per-user state: tools always allowed, decisions under way.
    approvals: ApprovalStore = field(default_factory=lambda: approval_store(None))
    # The Redis is this process's own (embedded): nobody else reads its streams, so what a
    # crashed run of this process left unacknowledged is ours to take at once.
    owns_redis: bool = False
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack, repr=False)
    _finally: list[Callable[[], Any]] = field(default_factory=list, repr=False)

    async def hold(self, context: AbstractAsyncContextManager[T]) -> T:
        """Enter `context` now and exit it at shutdown, before the `on_close` callbacks."""
        return await self._stack.enter_async_context(context)

    def on_close(self, callback: Callable[[], Any]) -> None:
        """Run `callback` at shutdown, once the platform's own clients are closed."""
        self._finally.append(callback)

    def all_tools(self) -> list[LoadedTool]:
        """Every tool any agent has, once (for `/tools`)."""
        seen: dict[str, LoadedTool] = {}
        for agent in self.agents.values():
            for loaded in agent.tools:
                seen.setdefault(loaded.tool.name, loaded)
        return sorted(seen.values(), key=lambda t: t.tool.name)

    async def aclose(self) -> None:
        try:
            await self._stack.aclose()
        finally:
            for callback in reversed(self._finally):
                callback()


def model_options(settings: Settings, embeddings: Any = None, *, spec: str | None = None
                  ) -> ModelOptions:
    """Options for the model `spec` names (PARLEY_LLM's by default). PARLEY_LLM_BASE_URL
    and PARLEY_LLM_API_KEY belong to PARLEY_LLM's provider: an agent that names another
    provider gets that provider's own defaults (its API key variable), so a key is never
    sent to another company's API, nor a model to the wrong server."""
    own = spec is None or parse_provider(spec)[0] == parse_provider(settings.llm)[0]
    return ModelOptions(
        embeddings=embeddings,
        temperature=settings.llm_temperature,
        base_url=settings.llm_base_url if own else None,
        api_key=(settings.llm_api_key.get_secret_value()
                 if own and settings.llm_api_key else None),
        timeout=settings.llm_timeout,
        fake_script=settings.fake_script,
        local_model_path=settings.local_model_path,
        local_n_ctx=settings.local_n_ctx,
        local_n_threads=settings.local_n_threads,
        local_decoding=local_decoding(settings),
    )


def local_decoding(settings: Settings) -> dict[str, Any]:
    """How the local model answers, leaving its own stop sequences when unset."""
    decoding: dict[str, Any] = {"max_tokens": settings.local_max_tokens,
                                "repeat_penalty": settings.local_repeat_penalty,
                                "dry_multiplier": settings.local_dry_multiplier,
                                "relay_tool_results": settings.local_relay_tool_results}
    if settings.local_stop is not None:
        decoding["stop"] = settings.local_stop
    return decoding


async def build_platform(
    settings: Settings,
    *,
    models: dict[str, BaseChatModel] | None = None,
    tool_sources: list[ToolSource] | None = None,
    tool_services: dict[str, Any] | None = None,
    observe_recall: Callable[[float], None] | None = None,
) -> Platform:
    """Build every agent. `models` maps provider strings to ready models (tests pass
    scripted ones); `tool_sources` replaces entry-point discovery."""
    stack = AsyncExitStack()
    redis = None
    checkpointer: BaseCheckpointSaver
    if settings.redis_url:
        redis = redis_client(settings.redis_url, max_connections=redis_pool_size(settings),
                             wait_seconds=max(1.0, settings.turn_wait_seconds))
        stack.push_async_callback(redis.aclose)
        # Short-term memory is the checkpointer: each thread's latest checkpoint in a
        # plain Redis string with a TTL, refreshed whenever the thread is read, and a few
        # before it for the Agent Protocol's history and branches. RedisJSON's conversion
        # cost 2 to 3 ms of CPU a turn (memory/redis_checkpointer.py).
        checkpointer = RedisStringSaver(redis, ttl_seconds=settings.thread_ttl_minutes * 60,
                                        keep=settings.thread_checkpoints)
    else:
        log.warning("PARLEY_REDIS_URL is unset: thread state lives in this process only")
        checkpointer = InMemorySaver()

    publish: Publish | None = None
    if redis is not None and settings.auth_enabled:
        publish = turn_publisher(redis, settings.turn_stream)
    # One embedder for memory and the local model's tool router (see ModelOptions).
    embeddings = shared_embeddings(settings)
    memory = build_memory(settings, redis, embeddings=embeddings)
    recall = make_recall(memory, k=settings.memory_top_k, min_score=settings.memory_min_score,
                         history=(tool_services or {}).get("history"),
                         forgotten=partial(deletion_queued, redis), observe=observe_recall)
    remember = make_remember(memory)

    approvals = approval_store(redis)
    plugins = discover_sources() if tool_sources is None else tool_sources
    # MCP servers are a second source of tools beside the entry points (docs/mcp.md).
    mcp = await start_mcp(settings, tool_services)
    if mcp is not None:
        stack.push_async_callback(mcp.aclose)  # the (server, user) sessions
    sources = plugins + (mcp.sources() if mcp else [])
    cache: dict[str, BaseChatModel] = dict(models or {})
    for spec in load_agents(settings.agents_file, settings.agent_tools).values():
        provider = spec.model or settings.llm
        if provider not in cache:
            cache[provider] = make_chat_model(
                provider, model_options(settings, embeddings, spec=provider))
    for model in cache.values():
        preload = getattr(model, "preload", None)
        if preload is not None:  # a local model: load it once, now, showing progress
            await asyncio.to_thread(preload, log.info)

    def build_agents(sources: list[ToolSource]) -> dict[str, Agent]:
        agents: dict[str, Agent] = {}
        for spec in load_agents(settings.agents_file, settings.agent_tools).values():
            model = with_temperature(cache[spec.model or settings.llm], spec.temperature)
            ctx = ToolContext(llm=model, options=settings.tool_options(), redis=redis,
                              services=tool_services or {})
            tools = [t for t in build_tools(sources, ctx) if spec.allows(t.tool.name)]
            gated = gated_tools(spec, [t.tool for t in tools])
            deps = GraphDeps(
                model=model,
                tools=[t.tool for t in tools],
                instructions=spec.instructions,
                max_steps=spec.max_steps or settings.max_steps,
                tool_timeout=settings.tool_timeout,
                window_tokens=settings.window_tokens,
                recall=recall,
                remember=remember,
                approval=approval_deps(gated, approvals,
                                       seconds=settings.approval_timeout_seconds),
            )
            builder = build_graph(deps)
            agents[spec.name] = Agent(
                spec=spec, model=model, tools=tools,
                graph=builder.compile(checkpointer=checkpointer, name=spec.name),
                stateless_graph=builder.compile(name=spec.name), gated=gated,
            )
        return agents

    agents = build_agents(sources)
    platform = Platform(settings=settings, agents=agents, tool_sources=sources,
                        checkpointer=checkpointer, redis=redis, memory=memory,
                        publish=publish, mcp=mcp, approvals=approvals, _stack=stack)
    if mcp is not None and mcp.missing:
        def add_returning_servers() -> None:
            # A server that was down at start lists its tools: the agents are built
            # again with them (turns already running keep the graphs they started on).
            assert mcp is not None
            platform.tool_sources = plugins + mcp.sources()
            platform.agents.update(build_agents(platform.tool_sources))

        await platform.hold(mcp.retrying(add_returning_servers))
    return platform


async def start_mcp(settings: Settings, tool_services: dict[str, Any] | None
                    ) -> McpTools | None:
    """The MCP servers of `PARLEY_MCP_SERVERS_FILE`, connected and their tools listed; a
    server that is down is skipped and tried again later. None without a file."""
    servers = load_servers(settings.mcp_servers_file)
    if not servers:
        return None
    mcp = McpTools(servers, timeout=settings.mcp_connect_timeout,
                   retry_seconds=settings.mcp_retry_seconds,
                   credentials=(tool_services or {}).get("mcp_credentials"))
    await mcp.start()
    return mcp


def with_temperature(model: BaseChatModel, temperature: float | None) -> BaseChatModel:
    """An agent's own temperature: a shallow copy of the shared model, so agents on one
    provider share its client (and a local model its loaded weights). A model without
    sampling (the scripted one) is used as it is."""
    if temperature is None or "temperature" not in type(model).model_fields:
        return model
    return model.model_copy(update={"temperature": temperature})


def redis_pool_size(settings: Settings) -> int:
    """Connections a process may open to Redis: a turn holds at most two at a time (its
    checkpoint, and the rate limit, memory or publish beside it), plus room for tools'
    caches and health checks."""
    return 2 * settings.max_concurrent_turns + 32


def redis_client(url: str, *, max_connections: int = 100, wait_seconds: float = 10.0) -> Any:
    """An async client that rides out a Redis restart (stale connections are retried) and
    whose pool, when all its connections are busy, waits for one (up to `wait_seconds`)
    instead of failing at once."""
    from redis.asyncio import BlockingConnectionPool, Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=wait_seconds,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 6),
        retry_on_error=[RedisConnectionError, RedisTimeoutError], health_check_interval=15)
    return Redis.from_pool(pool)  # the client owns the pool: closing it closes the pool


def shared_embeddings(settings: Settings) -> Any:
    """The shipped MiniLM, when memory embeds with it in float32: the local model's router
    uses the same instance. None otherwise: the router then loads its own float32 copy,
    since its accuracy target (`make eval`) was measured in float32, and memory builds
    its own (int8 by default)."""
    if (not settings.memory_enabled or settings.embeddings != "local"
            or settings.embeddings_precision != "float32"):
        return None
    from memory.embeddings import make_embeddings

    return make_embeddings("local", **settings.embedding_options())


def build_memory(settings: Settings, redis: Any = None, *,
                 embeddings: Any = None) -> SemanticMemory | None:
    """FAISS files for one process; Redis vector search when several replicas share
    memories (PARLEY_MEMORY_ENGINE=redis, see docs/memory-engines.md)."""
    if not settings.memory_enabled:
        return None
    from memory.embeddings import make_embeddings

    embeddings = embeddings or make_embeddings(settings.embeddings,
                                               **settings.embedding_options())
    if settings.memory_engine == "redis":
        from memory.redis_store import RedisVectorMemory

        if redis is None:
            if not settings.redis_url:
                raise ValueError("PARLEY_MEMORY_ENGINE=redis needs PARLEY_REDIS_URL")
            redis = redis_client(settings.redis_url)
        return RedisVectorMemory(redis, embeddings)
    from memory.faiss_store import FaissMemory

    return FaissMemory(settings.resolved_data_dir / "memory", embeddings)
