"""`GET /metrics`: Prometheus' text format, the turn stream's backlog read when scraped."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from server.api.deps import MaybePlatform, MetricsDep, SettingsDep
from server.metrics import turn_stream_backlog
from services.history.stream import HISTORY_GROUP

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics_endpoint(metrics: MetricsDep, settings: SettingsDep,
                           platform: MaybePlatform) -> Response:
    redis = platform.redis if platform is not None else None
    if redis is not None:
        try:
            metrics.stream_lag.set(await turn_stream_backlog(redis, settings.turn_stream,
                                                             HISTORY_GROUP))
        except Exception:
            metrics.stream_lag.set(float("nan"))
    return metrics.render()
