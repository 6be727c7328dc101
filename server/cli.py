"""The `parley` command: `serve` the platform, `chat` with it, list its `tools` and
`models`."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from server.settings import Settings

app = typer.Typer(help="Parley: tool-using agents with memory.", no_args_is_help=True,
                  add_completion=False)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (PARLEY_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (PARLEY_PORT).")] = None,
) -> None:
    """Start the platform: the API, the agents and, when PARLEY_REDIS_URL is unset, a
    local Redis under the data folder."""
    import uvicorn

    from agents.providers import ProviderError, check_provider
    from server.app import create_app
    from server.embedded.platform import build_embedded_platform
    from server.logs import configure_logging
    from server.platform import model_options
    from server.settings import Settings

    settings = Settings()
    updates: dict[str, object] = {}
    if host:
        updates["host"] = host
    if port:
        updates["port"] = port
    settings = settings.model_copy(update=updates)
    configure_logging(settings.log_format, settings.log_level, settings.log_library_levels)
    try:
        check_provider(settings.llm, model_options(settings))
    except ProviderError as exc:
        typer.echo(f"Cannot start with PARLEY_LLM={settings.llm}: {exc}", err=True)
        raise typer.Exit(2) from exc
    asgi = create_app(settings, platform_factory=build_embedded_platform)
    uvicorn.run(announce_when_ready(asgi, start_up_lines(settings)),
                host=settings.host, port=settings.port, log_config=None, access_log=False,
                timeout_graceful_shutdown=5)


def start_up_lines(settings: Settings) -> list[str]:
    """What a newcomer needs once the server is up: where to click, which model answers
    and where the data lives."""
    from agents.providers import describe_model
    from server.platform import model_options

    base = f"http://{settings.host}:{settings.port}"
    data = settings.resolved_data_dir
    return [
        f"Parley is ready on {base}",
        f"  chat page:   {base}/",
        f"  playground:  {base}/agents/assistant/playground/",
        f"  login page:  {base}/login",
        f"  API docs:    {base}/docs",
        f"  model:       {describe_model(settings.llm, model_options(settings))}"
        "  (`parley models` shows how to use another)",
        f"  data:        {data} (accounts, history, memory"
        + (", redis" if not settings.redis_url else "") + ")",
    ]


def announce_when_ready(app: ASGIApp, lines: list[str]) -> ASGIApp:
    """The app, logging `lines` once its start-up (the model loaded) is complete. Log lines,
    not prints: with PARLEY_LOG_FORMAT=json every line of output is JSON."""
    log = logging.getLogger("parley")

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def send_and_announce(message: Message) -> None:
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                for line in lines:
                    log.info("%s", line)

        await app(scope, receive, send_and_announce)

    return wrapped


@app.command()
def models() -> None:
    """Which model answers, the GGUF files installed, and how to use another model."""
    from agents.providers import describe_model
    from server.platform import model_options
    from server.settings import Settings
    from tools.apertium import translation_status

    settings = Settings()
    typer.echo(f"In use (PARLEY_LLM={settings.llm}):")
    typer.echo(f"  {describe_model(settings.llm, model_options(settings))}")
    if settings.llm == "local":
        typer.echo(f"  answers capped at {settings.local_max_tokens} tokens "
                   "(PARLEY_LOCAL_MAX_TOKENS), context "
                   f"{settings.local_n_ctx} tokens (PARLEY_LOCAL_N_CTX)")
    typer.echo(f"  {translation_status(settings.translator_engine(), settings.translation)}")
    found = installed_gguf_files()
    if found:
        typer.echo("\nGGUF files shipped in installed packages:")
        for path in found:
            typer.echo(f"  {path}  ({path.stat().st_size / 1e6:.0f} MB)")
    typer.echo(OTHER_MODELS)


OTHER_MODELS = """
To use another model:
  a GGUF file, run in process:
    PARLEY_LOCAL_MODEL_PATH=/path/to/model.gguf make run
  Ollama (https://ollama.com), after `ollama pull llama3.2`:
    PARLEY_LLM=openai-compatible:llama3.2 PARLEY_LLM_BASE_URL=http://127.0.0.1:11434/v1 make run
  llama.cpp's server, after `llama-server -m model.gguf --port 8080 --jinja`:
    PARLEY_LLM=openai-compatible:model PARLEY_LLM_BASE_URL=http://127.0.0.1:8080/v1 make run
  a hosted model:
    PARLEY_LLM=openai:gpt-4o-mini OPENAI_API_KEY=... make run
The README's "The local model" says which sizes run at what speed on a 2-core machine."""


def installed_gguf_files() -> list[Path]:
    """GGUF files inside installed packages (a model shipped in a wheel), one folder deep."""
    import site

    folders = {Path(p) for p in [*site.getsitepackages(), site.getusersitepackages()]}
    return sorted(path for folder in folders if folder.is_dir()
                  for path in folder.glob("*/*.gguf"))


@app.command()
def tools() -> None:
    """List every tool this installation offers: built-in, from plugins and from the MCP
    servers of PARLEY_MCP_SERVERS_FILE (connected to list them)."""
    from agents.fake import ScriptedChatModel
    from server.api.catalog import args_schema
    from server.gateway import build_services
    from server.settings import Settings
    from tools.context import ToolContext
    from tools.mcp_servers import McpTools, load_servers
    from tools.registry import build_tools, discover_sources

    settings = Settings()
    sources = discover_sources()
    servers = load_servers(settings.mcp_servers_file)
    if servers:
        mcp = McpTools(servers, timeout=settings.mcp_connect_timeout)

        async def listed() -> None:
            try:
                await mcp.start()
            finally:
                await mcp.aclose()

        asyncio.run(listed())
        sources += mcp.sources()
        for name in mcp.missing:
            typer.echo(f"(MCP server {name!r} is unavailable: its tools are not listed)",
                       err=True)
    # Listing only: tools that need a model are built with an inert one.
    ctx = ToolContext(llm=ScriptedChatModel(), options=settings.tool_options(),
                      services=build_services(settings).tool_services())
    for loaded in build_tools(sources, ctx):
        args = args_schema(loaded.tool)
        description = loaded.tool.description.strip().splitlines() or [""]
        typer.echo(f"{loaded.tool.name}  [{loaded.origin}]")
        typer.echo(f"    {description[0]}")
        typer.echo(f"    args: {json.dumps(args.get('properties', {}))}")


@app.command()
def chat(
    url: Annotated[str, typer.Option(help="The server's base URL.")] = "http://127.0.0.1:8000",
    agent: Annotated[str, typer.Option(help="Which agent to talk to.")] = "assistant",
    thread: Annotated[str | None, typer.Option(help="Continue this thread id.")] = None,
    token: Annotated[str | None, typer.Option(help="Access token (or PARLEY_TOKEN).")] = None,
    user: Annotated[str | None, typer.Option(help="Log in as this user (asks the password, "
                                                  "or reads PARLEY_PASSWORD).")] = None,
) -> None:
    """Chat in the terminal with a running server, streaming the answers."""
    from server.chat_client import ChatSession, LoginFailed, repl

    session = ChatSession(base_url=url, agent=agent, thread_id=thread,
                          token=token or os.environ.get("PARLEY_TOKEN"))
    if user:
        password = os.environ.get("PARLEY_PASSWORD") or typer.prompt("password",
                                                                      hide_input=True)
        try:
            session.login(user, password)
        except LoginFailed as exc:
            typer.echo(f"login failed: {exc}", err=True)
            raise typer.Exit(1) from exc
    repl(session)


memory_app = typer.Typer(help="Long-term memory of a user.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")


@memory_app.command("ingest")
def memory_ingest(
    files: Annotated[list[Path], typer.Argument(help="Text, Markdown or PDF files.")],
    user: Annotated[str, typer.Option(help="The username whose memory receives them.")],
    chunk_size: Annotated[int, typer.Option(help="Characters per chunk.")] = 800,
) -> None:
    """Add documents to a user's memory, in chunks, with a progress bar."""
    import asyncio

    from rich.progress import Progress

    from memory.embeddings import make_embeddings
    from memory.ingest import IngestError, ingest
    from server.gateway import build_services
    from server.platform import build_memory
    from server.settings import Settings
    from services.auth import crud

    settings = Settings()
    services = build_services(settings)
    # A bulk job: the embedding model may use every core, not one as in the server.
    memory = build_memory(settings, embeddings=make_embeddings(
        settings.embeddings, threads=os.cpu_count() or 1, **settings.embedding_options())
        if settings.memory_enabled and settings.embeddings == "local" else None)
    if services.auth is None or memory is None:
        typer.echo("needs the embedded auth service and memory (PARLEY_MEMORY_ENABLED)",
                   err=True)
        raise typer.Exit(2)
    services.auth.start()
    with services.auth.sessions() as session:
        account = crud.get_user_by_username(session=session, username=user)
    if account is None:
        typer.echo(f"no user {user!r}: register first (POST /auth/register or /login)",
                   err=True)
        raise typer.Exit(2)
    with Progress() as bar:
        task = bar.add_task(f"ingesting {len(files)} file(s)", total=None)
        try:
            stored = asyncio.run(ingest(
                memory, str(account.id), files, chunk_size=chunk_size,
                progress=lambda done, total: bar.update(task, completed=done, total=total)))
        except IngestError as exc:
            typer.echo(f"nothing stored: {exc}", err=True)
            raise typer.Exit(1) from exc
    typer.echo(f"stored {stored} chunks in {user}'s memory")


def _auth_settings() -> Any:
    from server.gateway import embedded_auth_settings
    from server.settings import Settings

    return embedded_auth_settings(Settings())


def _admin_app() -> typer.Typer:
    from services.auth.admin import admin_app

    return admin_app(_auth_settings)


app.add_typer(_admin_app(), name="admin",
              help="Roles of existing accounts: grant, revoke, list (logged).")


def _main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    _main()


