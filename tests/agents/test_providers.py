"""The provider factory: one string picks LangChain's own chat model class."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI

from agents.catalog import BUILTIN_AGENTS, load_agents
from agents.fake import ScriptedChatModel, say
from agents.providers import ModelOptions, ProviderError, make_chat_model, parse_provider
from agents.spec import AgentSpec


def test_openai_provider_builds_chat_openai() -> None:
    model = make_chat_model("openai:gpt-4o-mini", ModelOptions(api_key="sk-test",
                                                              temperature=0.1))
    assert isinstance(model, ChatOpenAI)
    assert model.model_name == "gpt-4o-mini"
    assert model.temperature == 0.1


def test_openai_compatible_needs_a_base_url() -> None:
    with pytest.raises(ProviderError, match="PARLEY_LLM_BASE_URL"):
        make_chat_model("openai-compatible:llama", ModelOptions())
    model = make_chat_model("openai-compatible:llama",
                            ModelOptions(base_url="http://127.0.0.1:9/v1"))
    assert isinstance(model, ChatOpenAI)
    assert str(model.openai_api_base) == "http://127.0.0.1:9/v1"


def test_unknown_provider_names_the_known_ones() -> None:
    with pytest.raises(ProviderError, match=r"unknown model provider 'gpt'.*openai"):
        parse_provider("gpt:4")


def test_missing_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_anthropic(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name.startswith("langchain_anthropic"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_anthropic)
    with pytest.raises(ProviderError, match=r"parley\[anthropic\]"):
        make_chat_model("anthropic:claude-x", ModelOptions())


async def test_fake_provider_plays_a_script_file(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([
        {"content": "checking", "tool_calls": [{"name": "get_weather",
                                                 "args": {"place": "Oslo"}}]},
        "It is cold in Oslo.",
    ]))
    model = make_chat_model("fake", ModelOptions(fake_script=script))
    assert isinstance(model, ScriptedChatModel)
    first = await model.ainvoke([HumanMessage("weather?")])
    assert first.tool_calls[0]["name"] == "get_weather"
    assert first.tool_calls[0]["args"] == {"place": "Oslo"}
    second = await model.ainvoke([HumanMessage("and?")])
    assert second.content == "It is cold in Oslo."
    # A served model keeps no record of its calls: it would grow by every turn (a test's
    # model keeps them, for the test to read).
    assert model.calls == []
    kept = ScriptedChatModel(script=[say("hi")], cycle=True)
    await kept.ainvoke([HumanMessage("hello")])
    assert [[m.text for m in call] for call in kept.calls] == [["hello"]]


async def test_fake_router_picks_a_step_by_keyword(tmp_path: Path) -> None:
    script = tmp_path / "router.json"
    script.write_text(json.dumps([{"route": {
        "weather": {"tool_calls": [{"name": "get_weather", "args": {"place": "Rome"}}]},
        "*": "Hello!",
    }}]))
    model = make_chat_model("fake", ModelOptions(fake_script=script))
    assert (await model.ainvoke([HumanMessage("hi")])).content == "Hello!"
    routed = await model.ainvoke([HumanMessage("What's the weather?")])
    assert routed.tool_calls[0]["args"] == {"place": "Rome"}


def test_agents_are_data_and_allow_lists_apply(tmp_path: Path) -> None:
    agents = load_agents()
    assert set(agents) == {a.name for a in BUILTIN_AGENTS}
    assert agents["assistant"].allows("anything_at_all")
    assert agents["weather"].allows("get_weather")
    assert not agents["weather"].allows("translate_text")
    narrowed = load_agents(tool_overrides={"assistant": ["get_weather"]})
    assert not narrowed["assistant"].allows("translate_text")
    with pytest.raises(ValueError, match="unknown agent 'ghost'"):
        load_agents(tool_overrides={"ghost": ["x"]})
    custom = tmp_path / "agents.json"
    custom.write_text(json.dumps([{"name": "poet", "description": "Writes poems.",
                                   "instructions": "Rhyme.", "tools": []}]))
    assert list(load_agents(custom)) == ["poet"]


def test_agent_names_must_be_url_safe() -> None:
    with pytest.raises(ValueError, match="lowercase"):
        AgentSpec(name="Bad Name", description="", instructions="")


def test_check_provider_fails_fast_with_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from agents.providers import check_provider

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ProviderError, match="OPENAI_API_KEY"):
        check_provider("openai:gpt-4o-mini", ModelOptions())
    check_provider("openai:gpt-4o-mini", ModelOptions(api_key="sk-x"))
    check_provider("fake", ModelOptions())
    with pytest.raises(ProviderError, match="unknown model provider"):
        check_provider("nope", ModelOptions())


def test_memory_and_the_local_router_share_one_embedder(tmp_path: Path) -> None:
    """One copy of MiniLM in the process, and a message embedded once per turn, when memory
    embeds in float32 as the router does; with memory in int8 (the default) the router
    keeps a float32 copy of its own, the precision its accuracy was measured in."""
    from agents.providers import make_chat_model
    from server.platform import build_memory, model_options, shared_embeddings
    from server.settings import Settings

    int8 = Settings(data_dir=tmp_path, llm="local")
    assert int8.embeddings_precision == "int8" and shared_embeddings(int8) is None
    assert make_chat_model("local", model_options(int8)).router is not None  # type: ignore[attr-defined]
    settings = Settings(data_dir=tmp_path, llm="local", embeddings_precision="float32")
    embeddings = shared_embeddings(settings)
    assert embeddings is not None
    memory = build_memory(settings, embeddings=embeddings)
    model = make_chat_model("local", model_options(settings, embeddings))
    assert memory.embeddings is embeddings  # type: ignore[union-attr]
    assert model.router is embeddings  # type: ignore[attr-defined]
    # Without local embeddings for memory, the router still gets one of its own.
    remote = Settings(data_dir=tmp_path, llm="local", embeddings="openai")
    assert shared_embeddings(remote) is None
    assert make_chat_model("local", model_options(remote)).router is not None  # type: ignore[attr-defined]
