"""The OpenAI-compatible API's refusals and limits on a real port, with auth on: errors in
OpenAI's shape that say what to fix, the token as the API key, the rate limit, failed
turns, clients that go away, and users kept apart."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jwt
import openai
import pytest
from langchain_core.messages import AIMessage, BaseMessage
from openai import OpenAI

from agents.fake import call, say
from tests.server.api.openai.support import AGENTS, login, says, serving, sse_data


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


def test_bad_requests_are_openai_errors_that_say_what_to_fix(make_auth_app, live) -> None:
    app = make_auth_app([say("ok")], max_message_chars=50, rate_limit_per_minute=0)
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


def test_the_token_is_the_api_key(make_auth_app, live) -> None:
    app = make_auth_app([say("ok")])
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


def test_the_rate_limit_is_the_chat_routes(make_auth_app, live) -> None:
    app = make_auth_app([say("ok")], rate_limit_per_minute=1, rate_limit_burst=1)
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


def test_a_failed_turn_is_a_500_or_ends_the_stream_with_an_error(make_auth_app, live) -> None:
    def explode(_messages: list[BaseMessage]) -> AIMessage:
        raise ConnectionError("model server down")

    app = make_auth_app([explode])
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


def test_a_client_that_goes_away_cancels_the_run(make_auth_app, live, probe) -> None:
    app = make_auth_app([call("wait_long", seconds=60), say("finished")], cycle=False)
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


def test_a_plain_request_whose_client_gives_up_stops_its_run(make_auth_app, live, probe) -> None:
    app = make_auth_app([call("wait_long", seconds=60), say("finished")], cycle=False)
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


def test_the_user_is_the_tokens_and_memories_stay_theirs(make_auth_app, live) -> None:
    app = make_auth_app([say("Noted.")], memory_enabled=True)
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
