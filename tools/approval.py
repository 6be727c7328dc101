"""What a tool says about approval, and checking a person's edit of its arguments.

A tool needs a person's approval before each call when its metadata says
`requires_approval` (MCP servers' tools carry it when their entry asks for it):

    @tool
    def send_invoice(customer: str, amount: float) -> str: ...
    send_invoice.metadata = {"requires_approval": True}  # @tool takes no metadata

Agents and users refine that (agents/spec.py, the server's policy); this module only
reads the tool."""

from __future__ import annotations

from typing import Any

import jsonschema
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ValidationError

APPROVAL_KEY = "requires_approval"


def declares_approval(tool: BaseTool) -> bool:
    return bool((tool.metadata or {}).get(APPROVAL_KEY))


class InvalidArguments(ValueError):
    """Edited arguments the tool would refuse; the message says what to fix."""


def check_arguments(tool: BaseTool, args: Any) -> dict[str, Any]:
    """`args` as sent, once they fit the tool's argument schema (the one the model sees),
    so the tool validates them itself when it runs, as it does the model's."""
    if not isinstance(args, dict):
        raise InvalidArguments(f"the arguments of {tool.name} must be a JSON object")
    schema = tool.tool_call_schema
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        try:
            schema.model_validate(args)
        except ValidationError as exc:
            raise InvalidArguments(_pydantic_problems(tool.name, exc)) from exc
    elif isinstance(schema, dict):  # a JSON-schema tool (MCP)
        try:
            jsonschema.validate(args, schema)
        except jsonschema.ValidationError as exc:
            where = ".".join(str(p) for p in exc.absolute_path) or "arguments"
            raise InvalidArguments(
                f"invalid arguments for {tool.name}: {where}: {exc.message}") from exc
    return args


def _pydantic_problems(name: str, exc: ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'arguments'}: {error['msg']}"
        for error in exc.errors())
    return f"invalid arguments for {name}: {problems}"
