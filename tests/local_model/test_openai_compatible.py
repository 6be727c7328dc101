"""The openai-compatible provider against a real OpenAI-compatible server on 127.0.0.1:
llama.cpp's own server on the same GGUF."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from langchain_core.tools import tool

from agents.local_model import default_model_path
from agents.providers import ModelOptions, make_chat_model
from server.embedded.redis_server import free_port


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()),
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
         "--chat_format", "chatml-function-calling"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "llama_cpp.server exited"
            try:
                if httpx.get(f"{base}/models").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "llama_cpp.server did not start"
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(15)


@tool
def get_weather(place: str) -> str:
    """Current weather for a place name."""
    return "sunny"


async def test_streams_through_the_openai_compatible_provider(llama_server: str) -> None:
    model = make_chat_model("openai-compatible:smollm2",
                            ModelOptions(base_url=llama_server, temperature=0.0))
    chunks = [c async for c in model.astream("Write one sentence about rivers.")]
    assert len(chunks) > 3
    assert "".join(str(c.content) for c in chunks).strip()


async def test_tool_calls_through_the_openai_compatible_provider(llama_server: str) -> None:
    model = make_chat_model("openai-compatible:smollm2",
                            ModelOptions(base_url=llama_server, temperature=0.0))
    bound = model.bind_tools([get_weather], tool_choice="get_weather")
    reply = await bound.ainvoke("What's the weather in Rome?")
    assert [c["name"] for c in reply.tool_calls] == ["get_weather"]
    assert isinstance(reply.tool_calls[0]["args"].get("place"), str)
