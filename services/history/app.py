"""The history service as an app of its own, with its stream consumer in its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis.asyncio import Redis

from services.history.consumer import run_consumer
from services.history.context import HistoryContext, build_history
from services.history.routes import build_router
from services.history.settings import HistorySettings
from services.tokens import TokenVerifier


@asynccontextmanager
async def consuming(ctx: HistoryContext) -> AsyncIterator[None]:
    """Run the turn-stream consumer while the block is open (when Redis is configured)."""
    if not ctx.settings.redis_url:
        yield
        return
    redis = Redis.from_url(ctx.settings.redis_url)
    stop = asyncio.Event()
    task = asyncio.create_task(run_consumer(redis, ctx, stop))
    try:
        yield
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await redis.aclose()


def create_app(settings: HistorySettings, verifier: TokenVerifier | None = None,
               ctx: HistoryContext | None = None) -> FastAPI:
    history = ctx or build_history(settings, verifier)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        history.start()
        try:
            async with consuming(history):
                yield
        finally:
            history.close()

    app = FastAPI(title="Parley history", lifespan=lifespan)
    app.state.history = history
    app.include_router(build_router(history))
    return app


def main() -> None:  # pragma: no cover - process entry point
    import uvicorn

    uvicorn.run(create_app(HistorySettings()), host="0.0.0.0", port=8002)


if __name__ == "__main__":  # pragma: no cover
    main()
