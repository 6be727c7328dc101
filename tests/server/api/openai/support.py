"""What the OpenAI-compatible API's tests share: a logged-in OpenAI client on a real port,
and reading raw event streams."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

PASSWORD = "a long enough password"
AGENTS = ["assistant", "reports", "summarizer", "translator", "weather"]


def login(url: str, username: str) -> str:
    with httpx.Client(base_url=url, timeout=30) as client:
        client.post("/auth/register", json={"username": username, "password": PASSWORD})
        response = client.post("/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@contextmanager
def serving(app: Any, live: Any) -> Iterator[tuple[str, OpenAI]]:
    """The app on a real port, and an OpenAI client logged in as Ada."""
    with live(app) as url:
        client = OpenAI(base_url=f"{url}/v1", api_key=login(url, "ada"), max_retries=0,
                        timeout=30)
        with client:
            yield url, client


def says(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def sse_data(raw: str) -> list[str]:
    """The `data:` payloads of a raw event stream, checking each event's framing."""
    assert raw.endswith("\n\n") and "\r" not in raw
    payloads = []
    for event in raw.split("\n\n")[:-1]:
        if event.startswith(":"):
            continue  # a keep-alive comment
        assert event.startswith("data: ") and "\n" not in event, event
        payloads.append(event.removeprefix("data: "))
    return payloads
