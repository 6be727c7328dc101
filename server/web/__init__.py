"""The chat page: a single-page app of plain ES modules under `static/`, served as they are
by `server/api/web.py`. No build step and no run-time download: every file the browser
loads is in this folder and ships in the Python package (pyproject's package data)."""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
