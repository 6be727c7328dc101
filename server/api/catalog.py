"""`GET /agents` and `GET /tools`: what this server offers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field

from server.api.deps import CurrentUser, PlatformDep
from tools.approval import declares_approval
from tools.registry import LoadedTool

router = APIRouter(tags=["catalog"])


class AgentInfo(BaseModel):
    name: str
    description: str
    tools: list[str]
    approval_required: list[str] = Field(
        description="Its tools whose calls wait for your approval (docs/approval.md), "
        "unless you always allow them.")
    model: str
    playground: str


class ToolInfo(BaseModel):
    name: str
    description: str
    args_schema: dict[str, Any]
    source: str
    requires_approval: bool = Field(
        description="The tool declares that each call waits for your approval; an "
        "agent may waive it or require it for others (GET /agents).")


def args_schema(tool: BaseTool) -> dict[str, Any]:
    """The JSON schema of a tool's arguments: from its model, or as given (MCP tools come
    with a JSON schema already)."""
    schema = tool.tool_call_schema
    if isinstance(schema, dict):
        return schema
    if hasattr(schema, "model_json_schema"):
        return dict(schema.model_json_schema())
    return {"type": "object", "properties": dict(tool.args)}


def tool_info(loaded: LoadedTool) -> ToolInfo:
    return ToolInfo(name=loaded.tool.name, description=loaded.tool.description,
                    args_schema=args_schema(loaded.tool), source=loaded.origin,
                    requires_approval=declares_approval(loaded.tool))


@router.get("/agents", response_model=list[AgentInfo])
async def list_agents(platform: PlatformDep, _user: CurrentUser) -> list[AgentInfo]:
    return [
        AgentInfo(name=name, description=agent.spec.description,
                  tools=[t.tool.name for t in agent.tools],
                  approval_required=sorted(agent.gated),
                  model=agent.spec.model or platform.settings.llm,
                  playground=f"/agents/{name}/playground/")
        for name, agent in sorted(platform.agents.items())
    ]


@router.get("/tools", response_model=list[ToolInfo])
async def list_tools(platform: PlatformDep, _user: CurrentUser) -> list[ToolInfo]:
    return [tool_info(t) for t in platform.all_tools()]
