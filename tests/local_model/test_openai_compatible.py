"""The openai-compatible provider against a real OpenAI-compatible server on 127.0.0.1:
llama.cpp's own server (from the xllamacpp wheel) on the same GGUF."""

from __future__ import annotations

import json
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
        [sys.executable, "-m", "tests.support.llama_server", str(default_model_path()),
         str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "the llama.cpp server exited"
            try:
                if httpx.get(f"{base}/models").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the llama.cpp server did not start"
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


async def test_tool_calls_through_the_openai_compatible_provider() -> None:
    """What the provider sends and how it reads a tool call back, over real HTTP. llama.cpp's
    server calls tools only for models whose chat template has them, which SmolLM2's has
    not, so here the model's side is a recorded OpenAI answer (the model is the one fake)."""
    from tests.support.replay_server import Answer, replay_server

    call = {"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"place\": \"Rome\"}"}}
    recorded = {"id": "chatcmpl-1", "object": "chat.completion", "created": 0,
                "model": "smollm2", "choices": [{
                    "index": 0, "finish_reason": "tool_calls",
                    "message": {"role": "assistant", "content": None, "tool_calls": [call]}}],
                "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}}
    with replay_server() as server:
        server.on("/v1/chat/completions", Answer.json(recorded))
        model = make_chat_model("openai-compatible:smollm2",
                                ModelOptions(base_url=f"{server.url}/v1", temperature=0.0))
        bound = model.bind_tools([get_weather], tool_choice="get_weather")
        reply = await bound.ainvoke("What's the weather in Rome?")
        sent = json.loads(server.posted[-1][1])
    assert sent["model"] == "smollm2"
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert reply.tool_calls == [{"name": "get_weather", "args": {"place": "Rome"},
                                 "id": "call_1", "type": "tool_call"}]
