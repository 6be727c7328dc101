"""Errors in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, for this
API's routes only: its route class turns every HTTP and validation error raised while a
request is handled (auth, rate limit, body) into one, and the app's handlers keep serving
every other route as before."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

# OpenAI's `type` and `code` for the statuses this API answers with.
_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", None),
    413: ("invalid_request_error", "request_too_large"),
    429: ("requests", "rate_limit_exceeded"),
    503: ("server_error", "service_unavailable"),
}


class OpenAIError(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, type: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        default_type, default_code = _KINDS.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None))
        self.status = status
        self.message = message
        self.param = param
        self.code = code or default_code
        self.type = type or default_type
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def from_http(exc: HTTPException) -> OpenAIError:
    """The platform's own HTTP errors (401 with WWW-Authenticate, 429 with Retry-After, 503
    while starting...), their message and headers kept."""
    return OpenAIError(exc.status_code, str(exc.detail), headers=exc.headers)


def from_validation(exc: RequestValidationError) -> OpenAIError:
    """A body FastAPI could not validate: 400, each problem named by its field."""
    problems: list[str] = []
    params: list[str] = []
    for error in exc.errors():
        where = param_name(error.get("loc", ()))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "json_invalid":
            where, message = "", "the request body is not valid JSON: " + str(
                (error.get("ctx") or {}).get("error", "")).lower()
        elif error.get("type") == "missing":
            message = ("this field is required" if where else
                       "the request body is required: a JSON object with model and messages")
        if where:
            params.append(where)
        problems.append(f"{where}: {message}" if where else message)
    return OpenAIError(400, "; ".join(problems), param=params[0] if params else None)


def param_name(loc: Sequence[Any]) -> str:
    """`("body", "messages", 0, "content")` as `messages[0].content`."""
    name = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        name += f"[{part}]" if isinstance(part, int) else f".{part}" if name else str(part)
    return name


class OpenAIRoute(APIRoute):
    """A route whose errors, however raised, answer in OpenAI's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def openai_errors(request: Request) -> Response:
            try:
                return await handle(request)
            except OpenAIError as exc:
                return exc.response()
            except RequestValidationError as exc:
                return from_validation(exc).response()
            except HTTPException as exc:  # FastAPI's is a subclass
                return from_http(exc).response()

        return openai_errors
