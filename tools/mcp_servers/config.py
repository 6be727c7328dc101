"""The MCP servers file (`PARLEY_MCP_SERVERS_FILE`): which MCP servers lend Parley tools.

```json
{"servers": {
  "files":   {"transport": "stdio", "command": "python", "args": ["files_server.py"]},
  "tickets": {"transport": "streamable_http", "url": "https://tickets.example/mcp",
              "headers": {"X-Team": "support"}, "stateful": true,
              "user_credential": {"header": "Authorization", "prefix": "Bearer "},
              "require_approval": true}
}}
```

`mcpServers` is accepted for `servers`, so a file written for another MCP client reads as
it is (entries without `transport` are stdio when they name a `command`, else HTTP)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

SERVER_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class UserCredential(BaseModel):
    """The calling user's own token or API key for this server (set with
    `PUT /auth/mcp-credentials/<server>`), sent as `header: <prefix><credential>`."""

    model_config = ConfigDict(extra="forbid")

    header: str = "Authorization"
    prefix: str = "Bearer "


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # One session per (server, user), kept open between calls, instead of one per call.
    stateful: bool = False
    # Every tool of the server needs the user's approval before it runs: set as each
    # tool's `requires_approval` metadata, which tools/approval.declares_approval reads.
    require_approval: bool = False
    description: str = ""


class StdioServer(_Common):
    transport: Literal["stdio"] = "stdio"
    command: str
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: str | None = None


class HttpServer(_Common):
    transport: Literal["streamable_http", "http", "streamable-http"] = "streamable_http"
    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    user_credential: UserCredential | None = None


ServerEntry = Annotated[StdioServer | HttpServer, Field(discriminator="transport")]
_ENTRY: TypeAdapter[StdioServer | HttpServer] = TypeAdapter(ServerEntry)


class McpConfigError(ValueError):
    """The servers file cannot be used: says which file, which entry and what to fix."""


def load_servers(path: Path | None) -> dict[str, StdioServer | HttpServer]:
    """The servers the file lists, by name; none without a file."""
    if path is None:
        return {}
    try:
        raw = json.loads(path.read_text())
    except OSError as exc:
        raise McpConfigError(f"cannot read the MCP servers file {path}: {exc}") from exc
    except ValueError as exc:
        raise McpConfigError(f"the MCP servers file {path} is not JSON: {exc}") from exc
    return parse_servers(raw, str(path))


def parse_servers(raw: Any, where: str = "the MCP servers file"
                  ) -> dict[str, StdioServer | HttpServer]:
    table = raw.get("servers", raw.get("mcpServers")) if isinstance(raw, dict) else None
    if not isinstance(table, dict):
        raise McpConfigError(f"{where}: expected an object with 'servers': "
                             "{name: {transport, ...}}")
    servers: dict[str, StdioServer | HttpServer] = {}
    for name, entry in table.items():
        if not SERVER_NAME.fullmatch(name):
            raise McpConfigError(f"{where}: server name {name!r} must be 1-64 letters, "
                                 "digits, '_' or '-'")
        if isinstance(entry, dict) and "transport" not in entry:
            entry = {**entry, "transport": "stdio" if "command" in entry else "streamable_http"}
        try:
            servers[name] = _ENTRY.validate_python(entry)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                 for e in exc.errors())
            raise McpConfigError(f"{where}: server {name!r}: {problems}") from exc
    return servers
