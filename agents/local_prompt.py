"""What the embedded model is shown: LangChain messages in the roles a small model's chat
template knows, and arguments copied from the user's own words instead of written by it."""

from __future__ import annotations

import json
import re
from typing import Any

from langchain_core.messages import BaseMessage

from tools.languages import resolve_language

_TEXT_ARGS = ("text", "content", "document")
_QUOTED = re.compile("[\"'\u201c\u2018](.+?)[\"'\u201d\u2019](?=\\W|$)")


def prefill_text_args(parameters: dict[str, Any], request: str) -> dict[str, str]:
    """Arguments that carry the user's own text are copied from the message, not written by
    the model: a small model asked to copy a text paraphrases or runs on. The text is what
    follows the first colon, else the first quoted span, else the whole message."""
    names = [n for n, spec in parameters.get("properties", {}).items()
             if n in _TEXT_ARGS and spec.get("type") == "string"]
    if not names:
        return {}
    head, colon, tail = request.partition(":")
    quoted = _QUOTED.search(request)
    if colon and tail.strip() and len(head) <= 100:
        text = tail.strip()
    elif quoted:
        text = quoted.group(1)
    else:
        text = request.strip()
    return {names[0]: text}


# "into French", "to Spanish", "In Portuguese,": a capitalised word after the preposition.
_NAMED_LANGUAGE = re.compile(r"\b(?i:into|to|in)\s+([A-Z][^\W\d_]+)")


def prefill_language_args(parameters: dict[str, Any], request: str) -> dict[str, str]:
    """An argument naming a language (`target_language`) takes the first language the user
    named ("into French"; "in Porto" names none): asked for it, a 135M model writes
    English, or a locale of its own."""
    names = [n for n, spec in parameters.get("properties", {}).items()
             if "language" in n and spec.get("type") == "string"]
    named = [word for word in _NAMED_LANGUAGE.findall(request) if resolve_language(word)]
    if not names or not named:
        return {}
    return {names[0]: named[0]}


def to_chat(messages: list[BaseMessage]) -> list[dict[str, str]]:
    chat: list[dict[str, str]] = []
    for m in messages:
        if m.type == "system":
            chat.append({"role": "system", "content": m.text})
        elif m.type == "human":
            chat.append({"role": "user", "content": m.text})
        elif m.type == "ai":
            calls = getattr(m, "tool_calls", None) or []
            text = m.text or "; ".join(f"(calling {c['name']} with {json.dumps(c['args'])})"
                                       for c in calls)
            chat.append({"role": "assistant", "content": text})
        elif m.type == "tool":
            # Chat templates of small models know no tool role: results come as user text.
            chat.append({"role": "user", "content": f"Result of the tool "
                         f"{getattr(m, 'name', '') or 'call'}:\n{m.text}\n"
                         "Answer my previous question with this result."})
    return _merge_system(chat)


def _merge_system(chat: list[dict[str, str]]) -> list[dict[str, str]]:
    systems = [m["content"] for m in chat if m["role"] == "system"]
    rest = [m for m in chat if m["role"] != "system"]
    return ([{"role": "system", "content": "\n\n".join(systems)}] if systems else []) + rest
