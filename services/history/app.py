"""The history service as an app of its own, with its stream consumer in its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.history.consumer import consumer_running
from services.history.context import HistoryContext, build_history
from services.history.routes import build_router
from services.history.settings import HistorySettings
from services.http_metrics import add_metrics
from services.tokens import TokenVerifier


def create_app(settings: HistorySettings, verifier: TokenVerifier | None = None,
               ctx: HistoryContext | None = None) -> FastAPI:
    history = ctx or build_history(settings, verifier)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        history.start()
        try:
            if history.settings.redis_url:
                async with consumer_running(history.settings.redis_url, history):
                    yield
            else:
                yield
        finally:
            history.close()

    app = FastAPI(title="Parley history", lifespan=lifespan)
    app.state.history = history
    app.include_router(build_router(history))
    add_metrics(app)
    return app


def from_env() -> FastAPI:
    """The app configured from PARLEY_HISTORY_* (for `uvicorn --factory`)."""
    return create_app(HistorySettings())


def main() -> None:  # pragma: no cover - process entry point
    import uvicorn

    uvicorn.run(create_app(HistorySettings()), host="0.0.0.0", port=8002)


if __name__ == "__main__":  # pragma: no cover
    main()
