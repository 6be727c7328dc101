"""An agent is data: a name, instructions, the tools it may use and its model settings."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, field_validator

ALL_TOOLS = "*"


class AgentSpec(BaseModel):
    name: str
    description: str
    instructions: str
    tools: list[str] = Field(
        default_factory=list,
        description="Tool names this agent may use; ['*'] for every tool, plugins included.",
    )
    model: str | None = Field(
        default=None, description="Provider string overriding the platform default."
    )
    temperature: float | None = None
    max_steps: int | None = Field(default=None, ge=1, le=50)

    @field_validator("name")
    @classmethod
    def _url_safe(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,39}", value):
            raise ValueError("agent names are 1-40 lowercase letters, digits, '-' or '_'")
        return value

    def allows(self, tool_name: str) -> bool:
        return ALL_TOOLS in self.tools or tool_name in self.tools
