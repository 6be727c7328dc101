"""One real Parley server for the chat page's browser tests (auth, history, long-term
memory, the reports tool, Redis), whose scripted model answers by what the user writes,
and Debian's Chromium. Each test signs up users of its own, so tests share the server but
no data."""

from __future__ import annotations

import asyncio
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import tool

from agents.fake import ScriptedChatModel, call, say
from server.app import create_app
from server.embedded.redis_server import EmbeddedRedis
from server.platform import Platform, build_platform
from server.settings import Settings
from tests.server.conftest import Probe, tool_sources_for
from tests.support.browser import chromium
from tests.support.live import serve_in_thread
from tools.registry import ToolSource
from tools.reports import reports_tools

PASSWORD = "a long enough password"
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"

MARKDOWN_ANSWER = """## A heading

Some **bold**, *italic* and `code`, a [safe link](https://example.org/docs) and an
[unsafe one](javascript:alert(1)), and <b>markup</b> that stays text.

```python
print("<script>alert(1)</script>")
```

| tool | calls |
|---|---|
| <i>add</i> | 2 |

- one
- two"""


@dataclass
class Gate:
    """A tool that waits until the test lets it go: while it waits, the turn is not over."""

    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)


def answer(messages: list[BaseMessage]) -> AIMessage:
    """The model's answer, by the last user message's words (or the tool just run)."""
    last = messages[-1]
    if last.type == "tool":
        return say({"add": "The sum is 7.", "usage_report": "Your report is ready.",
                    "gate": "Done thinking.", "wait_long": "The long job finished."}
                   .get(str(last.name), f"The tool said: {last.content}"))
    text = next(str(m.content) for m in reversed(messages) if m.type == "human")
    lowered = text.lower()
    if "sum" in lowered:
        return call("add", "Let me add that up.", a=2, b=5)
    if "report" in lowered:
        return call("usage_report", period_days=7)
    if "slowly" in lowered:
        return call("gate", "Let me think about it slowly.")
    if "long job" in lowered:
        return call("wait_long", "Starting the long job.", seconds=120)
    if "postcard" in lowered:  # send_postcard waits for the user's approval
        return call("send_postcard", "Sending a postcard.", to="Bob", text="Hi")
    if "markdown" in lowered:
        return say(MARKDOWN_ANSWER)
    return say(f"You said: {text}")


@dataclass
class ChatServer:
    url: str
    model: ScriptedChatModel
    gate: Gate
    probe: Probe

    def system_prompt(self) -> str:
        """What the model was told before the last user message it was sent."""
        return str(self.model.calls[-1][0].content)


def gate_source(state: Gate) -> ToolSource:
    @tool
    async def gate() -> str:
        """Wait until the test lets the turn go on."""
        state.reached.set()
        # The test's thread releases it; waiting in a worker thread keeps the loop free.
        released = await asyncio.to_thread(state.released.wait, 60)
        return "released" if released else "never released"

    return ToolSource(name="gate", origin="builtin", target=[gate])


@contextmanager
def serve_chat(redis_url: str, data: Path) -> Iterator[ChatServer]:
    """The server on a port of 127.0.0.1, with its data under `data`."""
    model = ScriptedChatModel(script=[answer], cycle=True)
    gate, probe = Gate(), Probe()
    sources = [*tool_sources_for(probe), gate_source(gate),
               ToolSource(name="reports", origin="builtin", target=reports_tools)]

    async def factory(settings: Settings, **kwargs: Any) -> Platform:
        return await build_platform(settings, models={"fake": model}, tool_sources=sources,
                                    **kwargs)

    settings = Settings(llm="fake", auth_enabled=True, memory_enabled=True, data_dir=data,
                        redis_url=redis_url, rate_limit_per_minute=600, rate_limit_burst=100)
    app = create_app(settings, platform_factory=factory)
    with serve_in_thread(app, proxy_headers=False) as url:
        yield ChatServer(url=url, model=model, gate=gate, probe=probe)


@pytest.fixture(scope="module")
def chat_server(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[ChatServer]:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    data = tmp_path_factory.mktemp("chat-page")
    with serve_chat(redis_server.url, data) as server:
        yield server
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """`new_page(**context_options)`: a page in a fresh context (its own cookies)."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        context = browser.new_context(**options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        return page

    yield make
    for context in contexts:
        context.close()


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:8]}"
