"""The servers compared, each started as `python -m bench.servers KIND PORT`:

- `parley`: the full platform (auth, rate limit, memory, Redis checkpointer, history)
- `bare`: a FastAPI endpoint around `graph.ainvoke`, and an SSE one around `astream`
- `langserve`: plain LangServe `add_routes` on the same graph
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from langchain_core.messages import HumanMessage
from langserve import add_routes
from sse_starlette.sse import EventSourceResponse

from bench.graph import bench_builder, bench_model, lookup


def bare_app() -> FastAPI:
    graph = bench_builder().compile()
    app = FastAPI()

    @app.post("/invoke")
    async def invoke(body: dict[str, Any]) -> dict[str, Any]:
        result = await graph.ainvoke({"messages": [HumanMessage(body["message"])]})
        return {"answer": result["messages"][-1].content}

    @app.post("/stream")
    async def stream(body: dict[str, Any]) -> EventSourceResponse:
        async def events():  # type: ignore[no-untyped-def]
            async for token, _meta in graph.astream(
                    {"messages": [HumanMessage(body["message"])]}, stream_mode="messages"):
                if token.content:
                    yield {"event": "token", "data": json.dumps({"text": token.content})}
            yield {"event": "done", "data": "{}"}

        return EventSourceResponse(events())

    return app


def langserve_app() -> FastAPI:
    app = FastAPI()
    add_routes(app, bench_builder().compile(), path="/graph")
    return app


def parley_app(data_dir: Path, redis_url: str) -> FastAPI:
    from server.app import create_app
    from server.logs import configure_logging
    from server.platform import Platform, build_platform
    from server.settings import Settings
    from tools.registry import ToolSource

    model = bench_model()

    async def factory(settings: Settings, **kwargs: Any) -> Platform:
        return await build_platform(settings, models={"fake": model},
                                    tool_sources=[ToolSource("bench", "builtin", lookup)],
                                    **kwargs)

    settings = Settings(llm="fake", data_dir=data_dir, redis_url=redis_url,
                        rate_limit_per_minute=1e9, rate_limit_burst=10**9,
                        log_level="WARNING")
    configure_logging(settings.log_format, settings.log_level)  # as `parley serve` does
    return create_app(settings, platform_factory=factory)


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "parley":
        app = parley_app(Path(os.environ["BENCH_DATA"]), os.environ["BENCH_REDIS"])
    elif kind == "bare":
        app = bare_app()
    else:
        app = langserve_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
