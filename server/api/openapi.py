"""The OpenAPI schema says what is actually sent: each route's error answers (401 without
a valid token, 413 for a body over the limit, 429 and 503 with Retry-After...) and their
one shape, which routes cannot all declare themselves (LangServe's are added for us)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM = {"type": "object", "required": ["detail"], "title": "Problem",
           "properties": {"detail": {"type": "string", "description": "What to fix."}}}
VALIDATION_PROBLEM = {
    "type": "object", "required": ["detail"], "title": "HTTPValidationError",
    "properties": {
        "detail": {"type": "string", "description": "Every problem, with where it is."},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "loc": {"type": "array", "items": {"anyOf": [{"type": "string"},
                                                         {"type": "integer"}]}},
            "msg": {"type": "string"}, "type": {"type": "string"}}}}}}
OPENAI_ERROR = {"type": "object", "required": ["error"], "title": "OpenAIError", "properties": {
    "error": {"type": "object", "required": ["message", "type"], "properties": {
        "message": {"type": "string"}, "type": {"type": "string"},
        "param": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "code": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}}}

# Routes anyone may call: no token, so no 401 for a missing one.
PUBLIC = {"/auth/register", "/auth/.well-known/jwks.json", "/auth/healthz", "/auth/readyz",
          "/history/healthz", "/history/readyz", "/healthz", "/readyz"}
# Routes whose answer is a password or token check: 401 for a wrong one.
CREDENTIAL_CHECKS = {"/auth/login", "/auth/refresh"}
RATE_LIMITED = ("/chat", "/chat/stream", "/v1/chat/completions", "/auth/login")
# The Agent Protocol's routes: threads, runs and assistants of the caller.
AGENT_PROTOCOL = ("/threads", "/runs", "/assistants")
WHY = {
    400: "The body is not JSON the route can read (not UTF-8, nested too deeply), or a "
         "request this API does not support.",
    401: "No valid access token (or wrong credentials).",
    403: "Not allowed: another user's data, or a cross-site request with the session cookie.",
    404: "No such resource for this user.",
    409: "Already there: the username is taken, or the thread exists or is busy with "
         "another run (see `multitask_strategy`).",
    413: "The body or a message is over the size limit.",
    415: "A body of a type this route does not read.",
    422: "The body or a parameter is invalid; `detail` says what to fix.",
    429: "Over the rate limit (or too many failed logins): see Retry-After.",
    502: "The language model failed.",
    503: "The server is starting, at its limit of concurrent turns, or a store it needs "
         "is unavailable: see Retry-After.",
}


def document_errors(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["HTTPValidationError"] = VALIDATION_PROBLEM
        components["Problem"] = PROBLEM
        components["OpenAIError"] = OPENAI_ERROR
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                if isinstance(operation, dict) and "responses" in operation:
                    _declare(path, method.upper(), operation)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _declare(path: str, method: str, operation: dict[str, Any]) -> None:
    statuses: set[int] = {503}  # starting, or a store or the auth service unreachable
    has_body = "requestBody" in operation
    is_turn = path in RATE_LIMITED or (path.startswith("/agents/") and method == "POST")
    if path not in PUBLIC:
        statuses.add(401)
    if has_body or method in ("PATCH", "DELETE") or path.startswith("/agents/"):
        statuses |= {400, 403, 413, 422}
    if operation.get("parameters"):
        statuses.add(422)
    if "{" in path or path.startswith("/agents/") or path in (
            "/history", "/memories", "/chat", "/chat/stream", "/v1/chat/completions"):
        statuses.add(404)  # no such thread, memory or agent
    if path == "/history":
        statuses.add(403)
    if is_turn or path in RATE_LIMITED:
        statuses.add(429)
    if path.startswith(("/agents/", "/v1/chat")):
        statuses.add(502)
    if path.startswith(AGENT_PROTOCOL):
        statuses |= {404, 409, 422}
        if "/runs" in path and method == "POST":
            statuses.add(429)
    if path == "/auth/login":
        statuses.add(415)
    if path == "/auth/register":
        statuses.add(409)  # the username is taken
    if path in CREDENTIAL_CHECKS:
        statuses.add(401)
    shape = "OpenAIError" if path.startswith("/v1/") else "Problem"
    responses = operation["responses"]
    if path.startswith("/agents/") and path.endswith(("/stream", "/stream_log",
                                                      "/stream_events")):
        ok = responses.setdefault("200", {"description": "Server-Sent Events"})
        ok.setdefault("content", {})["text/event-stream"] = {"schema": {}}
    for status in sorted(statuses):
        ref = "HTTPValidationError" if status == 422 and shape == "Problem" else shape
        responses.setdefault(str(status), {
            "description": WHY[status],
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
        })
