"""What memory puts into the agent's prompt, and what it takes from the user's words: the
recalled memories and the user's profile as text, and the rule for which messages are
facts about the user worth keeping across threads."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime

# A user message that says something about the user is worth keeping across threads.
_PERSONAL = re.compile(r"\b(i|i'm|i am|i've|my|mine|me|we|our)\b", re.IGNORECASE)


def is_personal_fact(text: str) -> bool:
    words = text.split()
    return 3 <= len(words) <= 80 and bool(_PERSONAL.search(text)) and not text.rstrip(
        ).endswith("?")


def render_memories(said: Iterable[tuple[datetime, str]]) -> str:
    """With the day each was said, so "when did..." can be answered from them."""
    lines = [f"- ({when:%d %b %Y}) {text}" for when, text in said]
    if not lines:
        return ""
    return "Things the user told you before (use them when relevant):\n" + "\n".join(lines)


def render_profile(profile: Mapping[str, object] | None) -> str:
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
