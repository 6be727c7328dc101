"""`/healthz`: the process is alive. `/readyz`: its dependencies answer."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from server.api.deps import MaybePlatform

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(platform: MaybePlatform) -> JSONResponse:
    checks: dict[str, str] = {"agents": "ok" if platform and platform.agents else "starting"}
    if platform is not None and platform.redis is not None:
        try:
            await asyncio.wait_for(platform.redis.ping(), 2.0)
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unreachable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)
