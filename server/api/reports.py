"""`GET /reports/{file}`: a report's chart or CSV, for the user it was made for only."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from server.api.deps import CurrentUser, SettingsDep
from tools.reports import user_dir

router = APIRouter(tags=["reports"])
_NAME = re.compile(r"[0-9a-f]{32}\.(png|csv)")


@router.get("/reports/{name}", response_class=FileResponse,
            responses={200: {"content": {"image/png": {}, "text/csv": {}}}})
async def report_file(name: str, settings: SettingsDep, user: CurrentUser) -> FileResponse:
    if not _NAME.fullmatch(name):
        raise HTTPException(404, "no such report")
    root = Path(settings.resolved_data_dir) / "reports"
    # Files live under their owner's folder: another user's id finds nothing.
    path = user_dir(root, user.user_id) / name
    if not path.is_file():
        raise HTTPException(404, "no such report")
    media = "image/png" if name.endswith(".png") else "text/csv"
    return FileResponse(path, media_type=media)
