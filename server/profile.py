"""The user's profile (from the auth service, via the gateway) as prompt context."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import AnyMessage

from graphs.deps import Recalled, TurnContext


def render_profile(profile: dict[str, object] | None) -> str:
    if not profile:
        return ""
    lines = []
    if profile.get("display_name"):
        lines.append(f"The user's name is {profile['display_name']}.")
    if profile.get("preferred_language"):
        lines.append(f"Answer in the user's preferred language: {profile['preferred_language']}.")
    if profile.get("custom_instructions"):
        lines.append(f"The user's instructions: {profile['custom_instructions']}")
    return "\n".join(lines)


async def recall_profile(ctx: TurnContext, _messages: Sequence[AnyMessage]) -> Recalled:
    return Recalled(context=render_profile(dict(ctx.profile or {})))
