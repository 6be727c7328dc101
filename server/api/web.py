"""`/`: Parley's chat page, and `/web/`: its files (server/web/static), served as they are.

The page is sent to a signed-in browser only: without a session, the app's 401 handler
sends a browser to the login page, which comes back here. Its files hold no data and are
served to anyone; every request the page makes goes through the API's own checks."""

from __future__ import annotations

import os

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

from server.api.deps import CurrentUser
from server.web import STATIC_DIR

router = APIRouter(include_in_schema=False)

# Defence in depth behind the page's own rule that text never becomes HTML: only Parley's
# own scripts run (no inline script, no event-handler attribute), images and requests
# go to Parley only, and no other site may frame the page.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Revalidated on every load (a 304 when unchanged), so an upgrade reaches browsers.
    "Cache-Control": "no-cache",
}


@router.get("/")
async def chat_page(_user: CurrentUser) -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


class PageFiles(StaticFiles):
    """The page's scripts, styles and icon, with the page's headers."""

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result,
                      scope: object, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope,  # type: ignore[arg-type]
                                         status_code)
        response.headers.update(PAGE_HEADERS)
        return response


def mount(app: FastAPI) -> None:
    app.mount("/web", PageFiles(directory=STATIC_DIR), name="web")
