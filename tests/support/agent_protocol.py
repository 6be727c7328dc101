"""A real Parley on 127.0.0.1 with Redis and auth, a scripted model, and two users with
personal API keys (what LangGraph's SDKs connect to), and another replica of it; the
fixtures are in tests/server/conftest.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from langchain_core.messages import AIMessage, BaseMessage

from agents.fake import call, say
from tests.server.api.openai.support import login


def scripted(messages: list[BaseMessage]) -> AIMessage:
    """Answers by what the user asked last, so tests can run any turn on any thread."""
    asked = next(m.text for m in reversed(messages) if m.type == "human")
    last = messages[-1]
    if last.type == "tool" and last.name == "send_postcard":
        return say(f"Postcard: {last.content}")
    if last.type == "tool":
        return say(f"The sum is {last.content}." if last.name == "add" else "Waited.")
    if asked.startswith("post to"):  # "post to <name>": a call that waits for approval
        return call("send_postcard", "Posting.", to=asked.split()[2], text="Hello!")
    if asked.startswith("add"):
        return call("add", "Adding.", a=2, b=3)
    if asked.startswith("wait"):
        return call("wait_long", seconds=float(asked.split()[1]) if " " in asked else 60)
    if asked.startswith("count"):
        return say(" ".join(f"word{i}" for i in range(int(asked.split()[1]))))
    if asked.startswith("first"):
        first = next(m.text for m in messages if m.type == "human")
        return say(f"Your first message was: {first}")
    return say(f"You said: {asked}")


@dataclass
class Server:
    url: str
    app: Any
    keys: dict[str, str]  # username -> personal API key

    def client(self, user: str = "ada", **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"x-api-key": self.keys[user]},
                            timeout=30, **kwargs)


def api_key(url: str, username: str) -> str:
    token = login(url, username)
    with httpx.Client(base_url=url, timeout=30) as client:
        made = client.post("/auth/api-keys", json={"name": "tests"},
                           headers={"Authorization": f"Bearer {token}"})
    assert made.status_code == 201, made.text
    return str(made.json()["key"])


def settings_for(redis_url: str, data: Path, **extra: Any) -> dict[str, Any]:
    return {"redis_url": redis_url, "data_dir": data, "rate_limit_per_minute": 0,
            "api_key_cache_seconds": 0, "resume_grace_seconds": 30, "max_steps": 3,
            **extra}
