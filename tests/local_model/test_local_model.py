"""The embedded llama.cpp model, for real: streaming, constrained tool calls, concurrency,
and the decoding that keeps a small model from running away."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from agents.llama_runtime import LlamaRuntime
from agents.local_model import (
    CUT_LENGTH,
    CUT_LOOPING,
    DEFAULT_MODEL_FILE,
    DEFAULT_STOP,
    LocalChatModel,
    default_model_path,
    load_model,
)
from agents.providers import ModelOptions, make_chat_model


@tool
def get_weather(place: str, days: int = 1) -> str:
    """Current weather conditions and a forecast of up to 7 days for a place name."""
    return f"Sunny in {place}"


@pytest.fixture(scope="module")
def model() -> LocalChatModel:
    # Answers of at most 128 tokens: enough for every check here, and a test's run stays
    # short on two busy cores (the 512-token cap is PARLEY_LOCAL_MAX_TOKENS's default).
    built = make_chat_model("local", ModelOptions(local_n_ctx=2048, temperature=0.0,
                                                  local_decoding={"max_tokens": 128}))
    assert isinstance(built, LocalChatModel)
    return built


def test_the_default_model_ships_in_a_wheel() -> None:
    path = default_model_path()
    assert path.suffix == ".gguf" and "site-packages" in str(path)
    assert path.stat().st_size > 50_000_000


def test_the_model_is_loaded_once_per_process(model: LocalChatModel) -> None:
    first = load_model(default_model_path(), n_ctx=2048, n_threads=None)
    again = load_model(default_model_path(), n_ctx=2048, n_threads=None)
    assert first is again


def test_the_runtime_is_a_prebuilt_wheel_not_a_local_build() -> None:
    """`make install` must not compile llama.cpp: the binding is xllamacpp's wheel."""
    from importlib.metadata import distribution

    runtime = load_model(default_model_path(), n_ctx=2048, n_threads=None)
    assert isinstance(runtime, LlamaRuntime)
    wheel = distribution("xllamacpp").read_text("WHEEL") or ""
    assert "Root-Is-Purelib: false" in wheel and "manylinux" in wheel


def test_closing_a_stream_stops_the_generation() -> None:
    runtime = load_model(default_model_path(), n_ctx=2048, n_threads=None)
    request = {"messages": [{"role": "user", "content": "Count from one to fifty in words."}],
               "temperature": 0, "max_tokens": 300}
    stream = runtime.stream_chat(request)
    pieces = [c for _, c in zip(range(4), stream, strict=False)]
    stream.close()
    assert len(pieces) == 4
    # The engine is free again at once: the next request is not queued behind the rest.
    answer = runtime.chat({**request, "max_tokens": 3})
    assert answer["usage"]["completion_tokens"] == 3


async def test_streams_tokens(model: LocalChatModel) -> None:
    chunks = [c async for c in model.astream("Write two sentences about the sea.")]
    text = "".join(str(c.content) for c in chunks)
    assert len(chunks) > 5 and len(text.split()) > 5


async def test_a_bound_tool_is_called_with_valid_arguments(model: LocalChatModel) -> None:
    reply = await model.bind_tools([get_weather]).ainvoke("What's the weather in Paris?")
    assert isinstance(reply, AIMessage)
    assert [c["name"] for c in reply.tool_calls] == ["get_weather"]
    args = reply.tool_calls[0]["args"]
    assert "paris" in args["place"].lower()
    get_weather.args_schema.model_validate(args)  # type: ignore[union-attr]


def after_two_calls(**porto: Any) -> list[BaseMessage]:
    """The second call's result first (calls of one step may end in any order)."""
    calls = [{"name": "get_weather", "args": {"place": p}, "id": f"c{i}"}
             for i, p in enumerate(("Paris", "Porto"))]
    return [HumanMessage("What's the weather in Paris and in Porto?"),
            AIMessage(content="", tool_calls=calls),
            ToolMessage(**{"content": "Porto: rain, 17 °C\n", "tool_call_id": "c1",
                           "name": "get_weather", **porto}),
            ToolMessage(content="Paris: sunny, 24 °C", tool_call_id="c0", name="get_weather")]


class Tokens(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def on_llm_new_token(self, token: str | list[str | dict[str, Any]],
                               **kwargs: Any) -> None:
        self.seen.append(str(token))


async def test_after_its_tool_calls_it_relays_their_results(model: LocalChatModel) -> None:
    bound = model.bind_tools([get_weather])
    tokens = Tokens()
    reply = await bound.ainvoke(after_two_calls(), config={"callbacks": [tokens]})
    assert not reply.tool_calls
    assert reply.text == "Paris: sunny, 24 °C\n\nPorto: rain, 17 °C"  # in the calls' order
    assert "".join(tokens.seen) == reply.text  # as tokens too, once, for streaming clients
    streamed = [chunk.text async for chunk in bound.astream(after_two_calls())]
    assert "".join(streamed) == reply.text


async def test_what_a_person_decided_on_a_call_is_not_relayed(model: LocalChatModel) -> None:
    """A rejection's note is written for the model ("Do not try it again…"), not the user."""
    note = "The user rejected this call to get_weather; it did not run. Do not try it again."
    reply = await model.bind_tools([get_weather]).ainvoke(after_two_calls(
        content=note, status="error", response_metadata={"approval": {"decision": "reject"}}))
    assert not reply.tool_calls and reply.text.strip()
    assert "Do not try it again" not in reply.text and "Paris: sunny" not in reply.text[:20]


async def test_with_relaying_off_it_answers_in_words(model: LocalChatModel) -> None:
    writes = model.model_copy(update={"relay_tool_results": False}).bind_tools([get_weather])
    reply = await writes.ainvoke(after_two_calls())
    assert not reply.tool_calls and reply.text.strip()
    assert reply.text != "Paris: sunny, 24 °C\n\nPorto: rain, 17 °C"


async def test_generation_leaves_the_event_loop_free(model: LocalChatModel) -> None:
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    await model.ainvoke("Tell me about mountains in three sentences.")
    stop.set()
    await task
    assert ticks > 3


async def test_concurrent_requests_queue_and_both_finish(model: LocalChatModel) -> None:
    one, two = await asyncio.gather(model.ainvoke("Say hello."), model.ainvoke("Say goodbye."))
    assert one.text.strip() and two.text.strip()


async def test_usage_counts_come_from_llama_cpp(model: LocalChatModel) -> None:
    reply = await model.ainvoke("Name one colour.")
    usage = reply.usage_metadata
    assert usage is not None and usage["input_tokens"] > 5 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


async def test_an_answer_at_the_length_cap_says_it_was_cut(model: LocalChatModel) -> None:
    short = model.model_copy(update={"max_tokens": 8})
    reply = await short.ainvoke("Write a long story about a lighthouse keeper.")
    assert reply.text.endswith(CUT_LENGTH.format(tokens=8))
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] == 8


async def test_an_answer_that_loops_is_cut_and_says_so(model: LocalChatModel) -> None:
    # Decoding without its brakes, asked to loop: the guard ends it at the third lap, long
    # before the length cap, and the answer says why it stops there.
    free = model.model_copy(update={"repeat_penalty": 1.0, "dry_multiplier": 0.0,
                                    "max_tokens": 400})
    reply = await free.ainvoke("List the numbers: 1, 1, 1, 1, 1, 1, 1,")
    assert reply.text.endswith(CUT_LOOPING), reply.text
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] < 100


def test_the_decoding_settings_reach_llama_cpp() -> None:
    from server.platform import model_options
    from server.settings import Settings

    settings = Settings(local_max_tokens=64, local_repeat_penalty=1.3,
                        local_dry_multiplier=0.0, local_stop=["###"])
    built = make_chat_model("local", model_options(settings))
    assert isinstance(built, LocalChatModel)
    assert built.decoding(["STOP"]) == {"temperature": settings.llm_temperature,
                                        "max_tokens": 64, "repeat_penalty": 1.3,
                                        "dry_multiplier": 0.0, "stop": ["###", "STOP"]}
    default = make_chat_model("local", model_options(Settings()))
    assert isinstance(default, LocalChatModel) and default.stop == list(DEFAULT_STOP)
    assert default.relay_tool_results and built.relay_tool_results
    writes = make_chat_model("local", model_options(Settings(local_relay_tool_results=False)))
    assert isinstance(writes, LocalChatModel) and not writes.relay_tool_results


@pytest.mark.timeout(600)
def test_serve_answers_with_no_key_and_no_configuration(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """What `make run` does on a fresh machine: the local model is the default."""
    from pathlib import Path

    import httpx

    from tests.support.replay_server import Answer, replay_server
    from tests.support.serve import parley_serve, sign_up

    recordings = Path(__file__).parents[1] / "tools" / "recordings" / "weather"
    with replay_server() as weather, parley_serve(tmp_path, {
            "PARLEY_LLM": "local", "OPENAI_API_KEY": "", "PARLEY_LOCAL_MAX_TOKENS": "128",
            "PARLEY_WEATHER_GEOCODING_URL": f"{weather.url}/v1/search",
            "PARLEY_WEATHER_FORECAST_URL": f"{weather.url}/v1/forecast"}) as served:
        weather.on("/v1/search", Answer.file(recordings / "geocoding_paris.json"))
        weather.on("/v1/forecast", Answer.file(recordings / "forecast_paris.json"))
        me = sign_up(served.url, "offline")
        turn = httpx.post(f"{served.url}/chat", headers=me, timeout=120,
                          json={"message": "Say hello in one short sentence."}).json()
        forecast = httpx.post(f"{served.url}/chat", headers=me, timeout=120,
                              json={"message": "What's the weather in Paris today?"}).json()
        invoked = httpx.post(f"{served.url}/agents/assistant/invoke", headers=me, timeout=120,
                             json={"input": {"messages": [{"type": "human",
                                                           "content": "Hi!"}]}}).json()
        log = served.log.read_text()
    assert turn["error"] is None and turn["message"]["content"].strip()
    assert [(t["tool"], t["status"]) for t in forecast["tool_calls"]] == [("get_weather", "ok")]
    assert "Weather for Paris" in forecast["tool_calls"][0]["output"]
    assert forecast["message"]["content"].strip()
    assert invoked["output"]["content"].strip()
    assert f"loaded {DEFAULT_MODEL_FILE}" in log


def test_text_arguments_are_copied_not_written() -> None:
    from agents.local_prompt import prefill_text_args

    schema = {"properties": {"text": {"type": "string"},
                             "target_language": {"type": "string"}}}
    assert prefill_text_args(schema, "Translate to Italian: Where is the pharmacy?") == {
        "text": "Where is the pharmacy?"}
    assert prefill_text_args(schema, "Translate 'good luck' into Korean") == {"text": "good luck"}
    assert prefill_text_args(schema, "summarize everything we said") == {
        "text": "summarize everything we said"}
    assert prefill_text_args({"properties": {"place": {"type": "string"}}}, "Paris?") == {}


def test_the_language_the_user_named_is_copied_not_written() -> None:
    from agents.local_prompt import prefill_language_args

    schema = {"properties": {"text": {"type": "string"},
                             "target_language": {"type": "string"}}}
    assert prefill_language_args(schema, "Translate into French: Thank you.") == {
        "target_language": "French"}
    assert prefill_language_args(schema, "How do you say 'hello' in Spanish?") == {
        "target_language": "Spanish"}
    assert prefill_language_args(schema, "Translate into Spanish: I live in Porto.") == {
        "target_language": "Spanish"}  # the first language named; Porto names none
    assert prefill_language_args(schema, "In French, how do I say thank you?") == {
        "target_language": "French"}
    # No language named: the model fills it in; a tool without such an argument: nothing.
    assert prefill_language_args(schema, "translate this for my friend") == {}
    assert prefill_language_args(schema, "My name is Ada and I live in Porto.") == {}
    assert prefill_language_args({"properties": {"place": {"type": "string"}}},
                                 "What is the weather in Paris?") == {}


async def test_the_router_picks_by_meaning_and_falls_back_to_words(
        model: LocalChatModel) -> None:
    from langchain_core.tools import tool as as_tool

    @as_tool
    def translate_text(text: str, target_language: str) -> str:
        """Translate a text into a target language."""
        return text

    translate_text.metadata = {"examples": ["translate this into French"]}
    bound = model.bind_tools([get_weather, translate_text])
    assert model.router is not None  # the local provider routes by meaning by default
    asked = await bound.ainvoke("Translate to Italian: Where is the nearest pharmacy?")
    assert asked.tool_calls[0]["name"] == "translate_text"
    assert asked.tool_calls[0]["args"]["text"] == "Where is the nearest pharmacy?"
    chat = await bound.ainvoke("Write a haiku about autumn leaves.")
    assert not chat.tool_calls and chat.text.strip()


@pytest.mark.timeout(900)  # 56 prompts through the model: minutes on a busy 2-core machine
def test_routing_accuracy_of_the_default_model_meets_its_target() -> None:
    """`make eval`'s two sets; the target of the local-model issue is 90%."""
    import asyncio

    from memory.embeddings import LocalEmbeddings
    from tests.eval.run_routing import CASES, HOLDOUT, evaluate

    routed = make_chat_model("local", ModelOptions(local_n_ctx=2048, temperature=0.0))
    assert isinstance(routed, LocalChatModel) and isinstance(routed.router, LocalEmbeddings)
    for cases in (CASES, HOLDOUT):
        result = asyncio.run(evaluate(routed, cases))
        assert float(result["accuracy"]) >= 0.9, result  # type: ignore[arg-type]
