"""The OpenAI-compatible API on a real port, driven by OpenAI's own client and by LangChain's
ChatOpenAI, with auth on: completions with server-side tools, streams, the client's
conversation, models, errors in OpenAI's shape, cancellation and users kept apart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import jwt
import openai
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam
from pydantic import SecretStr

from agents.fake import call, say

PASSWORD = "a long enough password"
AGENTS = ["assistant", "reports", "summarizer", "translator", "weather"]


@pytest.fixture
def make_app(make_app: Any) -> Any:
    """Apps with auth on: the server verifies real access tokens, issued by its auth
    service to users who registered."""

    def make(script: list[Any], **settings: Any) -> Any:
        return make_app(script, auth_enabled=True, **settings)

    return make


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


def words(text: Any) -> int:
    return len(str(text).split())  # the scripted model's tokens are words


def expected_usage(calls: list[list[BaseMessage]], answers: list[str]) -> dict[str, int]:
    prompt = sum(words(m.content) for messages in calls for m in messages)
    completion = sum(words(a) for a in answers)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


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


def tool_result_answer(messages: list[BaseMessage]) -> AIMessage:
    return say(f"The sum is {messages[-1].content}.")


def test_a_completion_runs_the_agents_tools_and_gives_its_answer(make_app, live) -> None:
    app = make_app([call("add", a=2, b=3), tool_result_answer], cycle=False)
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


def test_a_turn_stopped_at_the_step_limit_says_so(make_app, live) -> None:
    app = make_app([call("add", a=1, b=1)], max_steps=2)  # never answers
    with serving(app, live) as (_url, client):
        user = says("add forever")
        plain = client.chat.completions.create(model="assistant", messages=user)
        streamed = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="assistant", messages=user, stream=True) if c.choices]
    note = "I stopped after 2 steps without a final answer. Try a simpler or more specific request."
    assert plain.choices[0].message.content == note
    assert "".join(streamed) == note


def test_a_stream_gives_the_role_then_the_answers_tokens(make_app, live) -> None:
    turn = [call("add", "Let me add that.", a=1, b=1), say("It is two.")]
    app = make_app([*turn, *turn], cycle=False)
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


def test_chat_openai_sends_the_whole_conversation(make_app, live) -> None:
    app = make_app([recite])
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


def test_the_agents_are_the_models(make_app, live) -> None:
    with serving(make_app([say("ok")]), live) as (_url, client):
        models = client.models.list()
        weather = client.models.retrieve("weather")
        with pytest.raises(openai.NotFoundError) as missing:
            client.models.retrieve("gpt-4o")
    assert [m.id for m in models.data] == AGENTS
    assert {(m.object, m.owned_by) for m in models.data} == {("model", "parley")}
    assert all(isinstance(m.created, int) and m.created > 0 for m in models.data)
    assert (weather.id, weather.object) == ("weather", "model")
    assert missing.value.code == "model_not_found"


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


def test_bad_requests_are_openai_errors_that_say_what_to_fix(make_app, live) -> None:
    app = make_app([say("ok")], max_message_chars=50, rate_limit_per_minute=0)
    user = {"role": "user", "content": "hi"}
    bad: dict[str, tuple[dict[str, Any], str, str | None]] = {
        "n": ({"messages": [user], "n": 2}, "only n=1 is supported", "n"),
        "tools": ({"messages": [user], "tools": [{"type": "function", "function": {
            "name": "f", "parameters": {}}}]}, "runs its own tools on the server", "tools"),
        "tool_choice": ({"messages": [user], "tool_choice": "required"},
                        "runs its own tools on the server", "tool_choice"),
        "image": ({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]},
            "part 1 is of type 'image_url', and only text is supported",
            "messages[0].content"),
        "ends_with_assistant": ({"messages": [user, {"role": "assistant", "content": "hey"},
                                              {"role": "system", "content": "be brief"}]},
                                "the last message (system and developer ones aside) must be "
                                "the user's", "messages"),
        "tool_result": ({"messages": [user, {"role": "tool", "content": "42",
                                             "tool_call_id": "call_1"}, user]},
                        "tool calls and tool results cannot be sent", "messages[1]"),
        "role": ({"messages": [{"role": "robot", "content": "beep"}]},
                 "Input should be 'system', 'developer', 'user', 'assistant' or 'tool'",
                 "messages[0].role"),
        "messages_type": ({"messages": "hi"}, "messages: Input should be a valid list",
                          "messages"),
        "json_mode": ({"messages": [user], "response_format": {"type": "json_object"}},
                      'only {"type": "text"} is supported', "response_format"),
    }
    with serving(app, live) as (url, client):
        raised = {}
        for name, (body, _message, _param) in bad.items():
            with pytest.raises(openai.BadRequestError) as caught:
                client.chat.completions.create(**{"model": "assistant", **body})
            raised[name] = caught.value
        with pytest.raises(openai.APIStatusError) as too_long:
            client.chat.completions.create(model="assistant", messages=[
                {"role": "assistant", "content": "a long answer " * 20},  # the agent's: fine
                {"role": "user", "content": "x" * 51}])
        with pytest.raises(openai.NotFoundError) as ghost:
            client.chat.completions.create(model="ghost", messages=says("hi"), stream=True)
        with pytest.raises(openai.NotFoundError) as embeddings:
            client.embeddings.create(model="assistant", input="hi")
        not_json = httpx.post(f"{url}/v1/chat/completions", content=b"{not json",
                              headers={"Authorization": f"Bearer {client.api_key}",
                                       "content-type": "application/json"})
        no_messages = httpx.post(f"{url}/v1/chat/completions", json={"model": "assistant"},
                                 headers={"Authorization": f"Bearer {client.api_key}"})
        other_route = httpx.post(f"{url}/chat", json={"agent": "assistant"},
                                 headers={"Authorization": f"Bearer {client.api_key}"})
    for name, (_body, message, param) in bad.items():
        error = raised[name]
        assert message in error.message, (name, error.message)
        assert (error.type, error.param) == ("invalid_request_error", param), name
    assert too_long.value.status_code == 413
    assert "messages[1].content is 51 characters; the limit is 50" in too_long.value.message
    assert too_long.value.code == "string_above_max_length"
    assert ghost.value.code == "model_not_found" and ghost.value.param == "model"
    assert f"one of: {', '.join(AGENTS)}" in ghost.value.message
    assert "Invalid URL (POST /v1/embeddings)" in embeddings.value.message
    assert not_json.status_code == 400
    assert "not valid JSON" in error_of(not_json)["message"]
    assert no_messages.status_code == 400
    assert error_of(no_messages)["message"] == "messages: this field is required"
    assert error_of(no_messages)["param"] == "messages"
    # Other routes keep the app's own error shape.
    assert other_route.status_code == 422 and "message: Field required" in \
        other_route.json()["detail"]
    assert app.state.model.calls == []  # nothing ran


def test_the_token_is_the_api_key(make_app, live) -> None:
    app = make_app([say("ok")])
    with live(app) as url:
        forged = OpenAI(base_url=f"{url}/v1", api_key="not-a-token", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as invalid:
            forged.chat.completions.create(model="assistant",
                                           messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.AuthenticationError) as listing:
            forged.models.list()
        missing = httpx.post(f"{url}/v1/chat/completions", json={
            "model": "assistant", "messages": [{"role": "user", "content": "hi"}]})
    assert "invalid access token" in invalid.value.message
    assert invalid.value.code == "invalid_api_key"
    assert invalid.value.response.headers["www-authenticate"] == "Bearer"
    assert listing.value.status_code == 401
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "missing access token" in error_of(missing)["message"]
    assert app.state.model.calls == []


def test_the_rate_limit_is_the_chat_routes(make_app, live) -> None:
    app = make_app([say("ok")], rate_limit_per_minute=1, rate_limit_burst=1)
    with serving(app, live) as (url, client):
        user = says("hi")
        client.chat.completions.create(model="assistant", messages=user)
        with pytest.raises(openai.RateLimitError) as limited:
            client.chat.completions.create(model="assistant", messages=user)
        chat = httpx.post(f"{url}/chat", json={"message": "hi"},
                          headers={"Authorization": f"Bearer {client.api_key}"})
        listed = client.models.list()  # reading costs nothing
    assert "rate limit reached" in limited.value.message
    assert (limited.value.type, limited.value.code) == ("requests", "rate_limit_exceeded")
    assert 1 <= int(limited.value.response.headers["retry-after"]) <= 60
    assert chat.status_code == 429  # one bucket for /chat and /v1
    assert len(listed.data) == len(AGENTS)


def test_a_failed_turn_is_a_500_or_ends_the_stream_with_an_error(make_app, live) -> None:
    def explode(_messages: list[BaseMessage]) -> AIMessage:
        raise ConnectionError("model server down")

    app = make_app([explode])
    with serving(app, live) as (url, client):
        user = says("hi")
        with pytest.raises(openai.InternalServerError) as plain:
            client.chat.completions.create(model="assistant", messages=user)
        stream = client.chat.completions.create(model="assistant", messages=user,
                                                stream=True)
        received = []
        with pytest.raises(openai.APIError) as streamed:
            for chunk in stream:
                received.append(chunk)
        raw = httpx.post(f"{url}/v1/chat/completions", timeout=30, json={
            "model": "assistant", "messages": user, "stream": True},
            headers={"Authorization": f"Bearer {client.api_key}"})
    assert "model server down" in plain.value.message and plain.value.type == "server_error"
    # A client on OpenAI's default retries does not run the failed turn (its tools) again.
    calls = len(app.state.model.calls)
    with (live(app) as url,
          OpenAI(base_url=f"{url}/v1", api_key=login(url, "carol"), timeout=30) as retrying,
          pytest.raises(openai.InternalServerError)):
        retrying.chat.completions.create(model="assistant", messages=says("hi"))
    assert len(app.state.model.calls) == calls + 1
    assert [c.choices[0].delta.role for c in received] == ["assistant"]
    assert "model server down" in streamed.value.message
    *_, last = sse_data(raw.text)
    assert "model server down" in json.loads(last)["error"]["message"]  # and no [DONE]


def test_a_client_that_goes_away_cancels_the_run(make_app, live, probe) -> None:
    app = make_app([call("wait_long", seconds=60), say("finished")], cycle=False)
    with serving(app, live) as (url, client):
        stream = client.chat.completions.create(
            model="assistant", messages=[{"role": "user", "content": "wait please"}],
            stream=True)
        first = next(iter(stream))
        assert probe.started.wait(20)
        stream.close()
        deadline = time.monotonic() + 20
        while not probe.cancelled and time.monotonic() < deadline:
            time.sleep(0.05)
        assert probe.cancelled == ["wait_long"]
        assert httpx.get(f"{url}/healthz").status_code == 200
    assert first.choices[0].delta.role == "assistant"
    assert len(app.state.model.calls) == 1  # the model was not asked to go on


def test_a_plain_request_whose_client_gives_up_stops_its_run(make_app, live, probe) -> None:
    app = make_app([call("wait_long", seconds=60), say("finished")], cycle=False)
    with serving(app, live) as (url, _client):
        impatient = OpenAI(base_url=f"{url}/v1", api_key=login(url, "carol"), timeout=1.5,
                           max_retries=0)
        with impatient, pytest.raises(openai.APITimeoutError):
            impatient.chat.completions.create(model="assistant", messages=says("wait"))
        deadline = time.monotonic() + 20
        while not probe.cancelled and time.monotonic() < deadline:
            time.sleep(0.05)
        assert probe.cancelled == ["wait_long"]
    assert len(app.state.model.calls) == 1  # the model was not asked to go on


def test_the_user_is_the_tokens_and_memories_stay_theirs(make_app, live) -> None:
    app = make_app([say("Noted.")], memory_enabled=True)
    with live(app) as url:
        ada_token = login(url, "ada")
        ada_id = jwt.decode(ada_token, options={"verify_signature": False})["sub"]
        ada = OpenAI(base_url=f"{url}/v1", api_key=ada_token, max_retries=0)
        bob = OpenAI(base_url=f"{url}/v1", api_key=login(url, "bob"), max_retries=0)
        ada.chat.completions.create(model="assistant", messages=[
            {"role": "user", "content": "My sister Alice lives in Lyon."}])
        question = says("Where does my sister live?")
        # Bob sends Ada's user id as `user`: the token says who he is.
        bob.chat.completions.create(model="assistant", messages=question,
                                    user=str(ada_id))
        ada.chat.completions.create(model="assistant", messages=question)
    prompts = [str(messages[0].content) for messages in app.state.model.calls]
    assert "Lyon" not in prompts[1]  # Bob's
    assert "My sister Alice lives in Lyon." in prompts[2]  # Ada's own memory
