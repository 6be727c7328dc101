"""MCP servers as a second source of tools, beside the `parley.tools` entry points."""

from tools.mcp_servers.client import McpCallError, McpTools, SessionPool
from tools.mcp_servers.config import (
    HttpServer,
    McpConfigError,
    StdioServer,
    load_servers,
    parse_servers,
)

__all__ = ["HttpServer", "McpCallError", "McpConfigError", "McpTools", "SessionPool",
           "StdioServer", "load_servers", "parse_servers"]
