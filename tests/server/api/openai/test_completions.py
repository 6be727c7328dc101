"""The OpenAI-compatible API on a real port, driven by OpenAI's own client and by LangChain's
ChatOpenAI, with auth on: completions with server-side tools, streams, the client's
conversation and models (refusals and limits: test_errors.py)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from agents.fake import call, say
from tests.server.api.openai.support import AGENTS, login, says, serving, sse_data


def words(text: Any) -> int:
    return len(str(text).split())  # the scripted model's tokens are words


def expected_usage(calls: list[list[BaseMessage]], answers: list[str]) -> dict[str, int]:
    prompt = sum(words(m.content) for messages in calls for m in messages)
    completion = sum(words(a) for a in answers)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def tool_result_answer(messages: list[BaseMessage]) -> AIMessage:
    return say(f"The sum is {messages[-1].content}.")


def test_a_completion_runs_the_agents_tools_and_gives_its_answer(make_auth_app, live) -> None:
    app = make_auth_app([call("add", a=2, b=3), tool_result_answer], cycle=False)
    with serving(app, live) as (url, client):
        completion = client.chat.completions.create(
            model="assistant", messages=[{"role": "user", "content": "What is 2 + 3?"}],
            temperature=0.5, max_tokens=100, user="someone-else")
        metrics = httpx.get(f"{url}/metrics").text
    calls = app.state.model.calls
    assert calls[1][-1].type == "tool" and calls[1][-1].content == "5"  # ran on the server
    assert completion.id.startswith("chatcmpl-") and completion.object == "chat.completion"
    assert completion.model == "assistant" and completion.created > 0
    [choice] = completion.choices
    assert (choice.index, choice.finish_reason) == (0, "stop")
    assert (choice.message.role, choice.message.content) == ("assistant", "The sum is 5.")
    assert not choice.message.tool_calls
    assert completion.usage is not None
    assert completion.usage.model_dump(include={"prompt_tokens", "completion_tokens",
                                                "total_tokens"}) == expected_usage(
        calls, ["", "The sum is 5."])
    # Counted as /chat's turns are.
    assert 'parley_turns_total{agent="assistant",outcome="ok"} 1.0' in metrics
    assert 'parley_tool_calls_total{status="ok",tool="add"} 1.0' in metrics


def test_a_turn_stopped_at_the_step_limit_says_so(make_auth_app, live) -> None:
    app = make_auth_app([call("add", a=1, b=1)], max_steps=2)  # never answers
    with serving(app, live) as (_url, client):
        user = says("add forever")
        plain = client.chat.completions.create(model="assistant", messages=user)
        streamed = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="assistant", messages=user, stream=True) if c.choices]
    note = "I stopped after 2 steps without a final answer. Try a simpler or more specific request."
    assert plain.choices[0].message.content == note
    assert "".join(streamed) == note


def test_a_stream_gives_the_role_then_the_answers_tokens(make_auth_app, live) -> None:
    turn = [call("add", "Let me add that.", a=1, b=1), say("It is two.")]
    app = make_auth_app([*turn, *turn], cycle=False)
    with serving(app, live) as (url, client):
        chunks = list(client.chat.completions.create(
            model="assistant", messages=[{"role": "user", "content": "1+1?"}], stream=True,
            stream_options={"include_usage": True}))
        calls = list(app.state.model.calls)
        raw = httpx.post(f"{url}/v1/chat/completions", headers={
            "Authorization": f"Bearer {client.api_key}"}, timeout=30, json={
            "model": "assistant", "stream": True,
            "messages": [{"role": "user", "content": "1+1?"}]})
    first, *tokens, finish, usage = chunks
    assert first.choices[0].delta.role == "assistant" and first.choices[0].delta.content == ""
    deltas = [c.choices[0].delta.content for c in tokens]
    # Word by word as the model wrote them; the agent's words before its tool call lead,
    # a blank line apart. Neither the tool call nor its result is in the stream.
    assert deltas == ["Let", " ", "me", " ", "add", " ", "that.", "\n\nIt", " ", "is", " ",
                      "two."]
    assert all(c.choices[0].finish_reason is None for c in [first, *tokens])
    assert finish.choices[0].finish_reason == "stop" and not finish.choices[0].delta.content
    assert usage.choices == [] and usage.usage is not None
    assert usage.usage.model_dump(include={"prompt_tokens", "completion_tokens",
                                           "total_tokens"}) == expected_usage(
        calls, ["Let me add that.", "It is two."])
    assert {c.id for c in chunks} == {first.id} and first.id.startswith("chatcmpl-")
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    # On the wire: `data: <json>` events, ending with [DONE]; no usage chunk unasked.
    assert raw.status_code == 200
    assert raw.headers["content-type"].startswith("text/event-stream")
    payloads = sse_data(raw.text)
    assert payloads[-1] == "[DONE]"
    bodies = [json.loads(p) for p in payloads[:-1]]
    assert "".join(b["choices"][0]["delta"].get("content", "") for b in bodies) == \
        "Let me add that.\n\nIt is two."
    assert [b["choices"][0]["finish_reason"] for b in bodies][-2:] == [None, "stop"]
    assert all("usage" not in b for b in bodies)


def recite(messages: list[BaseMessage]) -> AIMessage:
    """Answers with the conversation it was given (its own instructions aside)."""
    return say(" | ".join(f"{m.type}: {m.content}" for m in messages[1:]))


def test_chat_openai_sends_the_whole_conversation(make_auth_app, live) -> None:
    app = make_auth_app([recite])
    with live(app) as url:
        model = ChatOpenAI(base_url=f"{url}/v1", api_key=SecretStr(login(url, "ada")),
                           model="assistant", max_retries=0, temperature=0.3)
        conversation = [SystemMessage("Answer in French."), HumanMessage("My name is Ada."),
                        AIMessage("Hello Ada."),
                        HumanMessage([{"type": "text", "text": "What is "},
                                      {"type": "text", "text": "my name?"}])]
        answer = model.invoke(conversation)
        streamed = list(model.stream(conversation))
    expected = "human: My name is Ada. | ai: Hello Ada. | human: What is my name?"
    assert answer.content == expected
    assert "".join(str(c.content) for c in streamed) == expected
    first_call = app.state.model.calls[0]
    assert [m.type for m in first_call] == ["system", "human", "ai", "human"]
    # The agent's own instructions lead; the client's system message is not passed on.
    assert "Parley Assistant" in first_call[0].content
    assert all("French" not in str(m.content) for m in first_call)
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["input_tokens"] == sum(words(m.content) for m in first_call)
    assert answer.usage_metadata["output_tokens"] == words(expected)


def test_the_agents_are_the_models(make_auth_app, live) -> None:
    with serving(make_auth_app([say("ok")]), live) as (_url, client):
        models = client.models.list()
        weather = client.models.retrieve("weather")
        with pytest.raises(openai.NotFoundError) as missing:
            client.models.retrieve("gpt-4o")
    assert [m.id for m in models.data] == AGENTS
    assert {(m.object, m.owned_by) for m in models.data} == {("model", "parley")}
    assert all(isinstance(m.created, int) and m.created > 0 for m in models.data)
    assert (weather.id, weather.object) == ("weather", "model")
    assert missing.value.code == "model_not_found"
