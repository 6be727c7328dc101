"""`GET /info`: what this server is, for clients that check before they connect
(agent-chat-ui does, before asking for a key). Open, like LangGraph Server's."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter

router = APIRouter(tags=["agent protocol"])


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


@router.get("/info")
async def info() -> dict[str, Any]:
    return {"version": _version("parley") or "0.1.0", "server": "parley",
            "langgraph_py_version": _version("langgraph"),
            "flags": {"assistants": True, "crons": False, "langsmith": False,
                      "store": False, "resumable_streams": True}}


@router.get("/ok", include_in_schema=False)
async def ok() -> dict[str, bool]:
    return {"ok": True}
