"""The `parley` command: `serve` the platform, `chat` with it, list its `tools`."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Annotated

import typer

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
    configure_logging(settings.log_format, settings.log_level)
    try:
        check_provider(settings.llm, model_options(settings))
    except ProviderError as exc:
        typer.echo(f"Cannot start with PARLEY_LLM={settings.llm}: {exc}", err=True)
        raise typer.Exit(2) from exc
    # A log line, not a print: with PARLEY_LOG_FORMAT=json every line of output is JSON.
    logging.getLogger("parley").info(
        "Parley on http://%s:%d  (playground: http://%s:%d/agents/assistant/playground/)",
        settings.host, settings.port, settings.host, settings.port)
    uvicorn.run(create_app(settings, platform_factory=build_embedded_platform),
                host=settings.host, port=settings.port, log_config=None, access_log=False,
                timeout_graceful_shutdown=5)


@app.command()
def tools() -> None:
    """List every tool this installation offers: built-in and from plugins."""
    from agents.fake import ScriptedChatModel
    from server.gateway import build_services
    from server.settings import Settings
    from tools.context import ToolContext
    from tools.registry import build_tools, discover_sources

    settings = Settings()
    # Listing only: tools that need a model are built with an inert one.
    ctx = ToolContext(llm=ScriptedChatModel(), options=settings.tool_options(),
                      services=build_services(settings).tool_services())
    for loaded in build_tools(discover_sources(), ctx):
        schema = loaded.tool.tool_call_schema
        args = schema.model_json_schema() if hasattr(schema, "model_json_schema") else {}
        typer.echo(f"{loaded.tool.name}  [{loaded.origin}]")
        typer.echo(f"    {loaded.tool.description.strip().splitlines()[0]}")
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


def _main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    _main()


