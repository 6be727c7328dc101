"""The user's profile (from the auth service, via the gateway) as prompt context."""

from __future__ import annotations


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
