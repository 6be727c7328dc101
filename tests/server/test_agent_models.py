"""Each agent's model: PARLEY_LLM's base URL and key go to PARLEY_LLM's provider only, and
an agent's own temperature is used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from server.platform import build_platform
from server.settings import Settings


def agent(name: str, **extra: object) -> dict[str, object]:
    return {"name": name, "description": name, "instructions": "Answer.", **extra}


async def test_agents_get_their_own_providers_settings(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-openai-variable")
    agents_file = tmp_path / "agents.json"
    agents_file.write_text(json.dumps([
        agent("default"),
        agent("cloud", model="openai:gpt-4o-mini", temperature=0.9),
        agent("same-server", model="openai-compatible:qwen", temperature=0.0),
    ]))
    settings = Settings(llm="openai-compatible:llama3", llm_base_url="http://127.0.0.1:11434/v1",
                        llm_api_key=SecretStr("the-ollama-key"), agents_file=agents_file,
                        data_dir=tmp_path, memory_enabled=False, auth_enabled=False)
    platform = await build_platform(settings, tool_sources=[])
    try:
        models = {name: a.model for name, a in platform.agents.items()}
    finally:
        await platform.aclose()

    default, cloud, same = models["default"], models["cloud"], models["same-server"]
    # Another provider: its own defaults, not the Ollama server or its key.
    assert cloud.openai_api_base is None  # type: ignore[attr-defined]
    assert cloud.openai_api_key.get_secret_value() == "sk-from-the-openai-variable"  # type: ignore[attr-defined]
    assert cloud.temperature == 0.9  # type: ignore[attr-defined]
    # PARLEY_LLM's provider, another model on the same server: its URL and key.
    for model in (default, same):
        assert model.openai_api_base == "http://127.0.0.1:11434/v1"  # type: ignore[attr-defined]
        assert model.openai_api_key.get_secret_value() == "the-ollama-key"  # type: ignore[attr-defined]
    assert default.temperature == 0.2 and same.temperature == 0.0  # type: ignore[attr-defined]
    assert same.model_name == "qwen"  # type: ignore[attr-defined]


async def test_agents_on_one_model_share_it_whatever_their_temperature(
        tmp_path: Path) -> None:
    from agents.fake import ScriptedChatModel, say

    agents_file = tmp_path / "agents.json"
    agents_file.write_text(json.dumps([agent("a"), agent("b", temperature=0.7)]))
    settings = Settings(llm="fake", agents_file=agents_file, data_dir=tmp_path,
                        memory_enabled=False, auth_enabled=False)
    scripted = ScriptedChatModel(script=[say("hi")], cycle=True)
    platform = await build_platform(settings, models={"fake": scripted}, tool_sources=[])
    await platform.aclose()
    # A scripted model has no sampling: both agents use it as it is.
    assert platform.agents["a"].model is scripted and platform.agents["b"].model is scripted
