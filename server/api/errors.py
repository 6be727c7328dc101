"""The app's error answers for every route, LangServe's included: every malformed request
is a 4xx in one documented shape, `{"detail": "<what to fix>"}` (422s add the `errors`
FastAPI found), never a 500."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.approval.claims import Taken
from server.approval.decisions import Refused
from server.runner.failures import STORE_RETRY_AFTER

log = logging.getLogger(__name__)


def install_error_handlers(app: FastAPI) -> None:
    app.exception_handler(RequestValidationError)(validation_error)
    app.exception_handler(StarletteHTTPException)(http_error)
    app.exception_handler(RecursionError)(too_deep)
    app.exception_handler(UnicodeDecodeError)(not_utf8)
    app.exception_handler(UnicodeEncodeError)(not_unicode)
    # A store that does not answer before a turn's stream has begun (the live run's event
    # log, a thread's record): the request is refused whole, as the rate limiter's is.
    app.exception_handler(RedisConnectionError)(store_down)
    app.exception_handler(RedisTimeoutError)(store_down)
    # Tool approval's refusals, whichever API the decision came through (docs/approval.md).
    app.exception_handler(Refused)(refused)
    app.exception_handler(Taken)(taken)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc.__cause__, RecursionError):  # FastAPI's "error parsing the body"
        return await too_deep(request, exc.__cause__)
    if isinstance(exc.__cause__, UnicodeDecodeError):
        return await not_utf8(request, exc.__cause__)
    # A browser asking for a page without a session goes to the login page instead.
    if (exc.status_code == 401 and request.method == "GET"
            and "text/html" in request.headers.get("accept", "")):
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    return await http_exception_handler(request, exc)


async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems: list[str] = []
    errors: list[dict[str, Any]] = []
    for error in exc.errors():
        if not isinstance(error, dict):  # LangServe raises with plain strings
            text = str(error)
            if "json" in text.lower():
                text = "the request body is not valid JSON"
            problems.append(f"body: {text}")
            errors.append({"loc": ["body"], "msg": text, "type": "value_error"})
            continue
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid":
            where, message = "body", "the request body is not valid JSON"
        problems.append(f"{where}: {message}")
        errors.append({"loc": [str(p) if not isinstance(p, int) else p
                               for p in error.get("loc", ())],
                       "msg": str(error.get("msg", "")), "type": str(error.get("type", ""))})
    return JSONResponse(status_code=422, content={"detail": "; ".join(problems) or "invalid",
                                                  "errors": errors})


async def too_deep(_request: Request, _exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=400, content={
        "detail": "the request body nests too deeply: send JSON nested at most a few hundred "
                  "levels"})


async def not_utf8(_request: Request, _exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=400, content={
        "detail": "the request body is not valid UTF-8: send JSON encoded as UTF-8"})


async def store_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("refusing %s %s: a store is unavailable (%s)", request.method,
                request.url.path, type(exc).__name__)
    return JSONResponse(
        status_code=503, headers={"Retry-After": str(STORE_RETRY_AFTER)},
        content={"detail": "the conversation store is unavailable: try again in "
                           f"{STORE_RETRY_AFTER} s"})


async def not_unicode(_request: Request, _exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=422, content={
        "detail": "the text contains an unpaired surrogate (such as \\ud800), which is not "
                  "Unicode: send valid text"})


async def refused(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": str(exc)})


async def taken(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=409, content={"detail": str(exc)})
