"""An agent is data: a name, instructions, the tools it may use and its model settings."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, field_validator, model_validator

ALL_TOOLS = "*"


class ApprovalRules(BaseModel):
    """Which of the agent's tools need a person's approval before each call, beyond what
    the tools declare themselves (docs/approval.md)."""

    require: list[str] = Field(
        default_factory=list,
        description="Tools that need approval with this agent; ['*'] for all of them.")
    waive: list[str] = Field(
        default_factory=list,
        description="Tools that run without approval with this agent, even when they "
        "declare they need it; ['*'] for all of them.")

    @model_validator(mode="after")
    def _not_both(self) -> ApprovalRules:
        both = sorted(set(self.require) & set(self.waive))
        if both:
            raise ValueError(f"approval names {both} in both 'require' and 'waive': "
                             "keep each tool in one")
        return self

    def needs(self, tool_name: str, *, declared: bool) -> bool:
        """Whether a call to the tool waits for approval, given whether the tool itself
        declares that it needs it. A named tool wins over '*'."""
        if tool_name in self.waive:
            return False
        if tool_name in self.require:
            return True
        if ALL_TOOLS in self.waive:
            return False
        return declared or ALL_TOOLS in self.require


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
    approval: ApprovalRules = Field(
        default_factory=ApprovalRules,
        description="Tools whose calls wait for the user's approval (or not) with this "
        "agent.")

    @field_validator("name")
    @classmethod
    def _url_safe(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,39}", value):
            raise ValueError("agent names are 1-40 lowercase letters, digits, '-' or '_'")
        return value

    def allows(self, tool_name: str) -> bool:
        return ALL_TOOLS in self.tools or tool_name in self.tools
