"""The auth service as an app of its own (the distributed shape).

`uvicorn --factory services.auth.app:from_env` runs it configured from `PARLEY_AUTH_*`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.auth.context import AuthContext, build_auth
from services.auth.routes import build_router
from services.auth.settings import AuthSettings
from services.http_metrics import add_metrics


def create_app(settings: AuthSettings, ctx: AuthContext | None = None) -> FastAPI:
    auth = ctx or build_auth(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(auth.start)  # migrations and key files: blocking work
        try:
            yield
        finally:
            await auth.aclose()

    app = FastAPI(title="Parley auth", lifespan=lifespan)
    app.state.auth = auth
    app.include_router(build_router(auth))
    add_metrics(app)
    return app


def from_env() -> FastAPI:
    """The app configured from PARLEY_AUTH_* (for `uvicorn --factory`)."""
    return create_app(AuthSettings())


def main() -> None:  # pragma: no cover - process entry point
    import uvicorn

    uvicorn.run(from_env(), host="0.0.0.0", port=8001)


if __name__ == "__main__":  # pragma: no cover
    main()
