"""Each agent through LangServe: HTTP endpoints, the RemoteRunnable client, schemas."""

from __future__ import annotations

import asyncio

import httpx
from langchain_core.messages import AIMessage, HumanMessage
from langserve import RemoteRunnable

from agents.fake import call, say
from tests.server.api.test_chat import sse_events


def conversation(*turns: str) -> dict:
    messages = []
    for i, text in enumerate(turns):
        messages.append({"type": "human" if i % 2 == 0 else "ai", "content": text})
    return {"messages": messages}


async def test_invoke_batch_and_schemas(make_app, client_for) -> None:
    app = make_app([say("Hello from Parley")])
    async with client_for(app) as client:
        invoked = await client.post("/agents/assistant/invoke",
                                    json={"input": conversation("hi")})
        batched = await client.post("/agents/weather/batch",
                                    json={"inputs": [conversation("a"), conversation("b")]})
        input_schema = (await client.get("/agents/assistant/input_schema")).json()
        output_schema = (await client.get("/agents/assistant/output_schema")).json()
        bad = await client.post("/agents/assistant/invoke",
                                json={"input": {"text": "no messages key"}})
        missing = await client.post("/agents/ghost/invoke", json={"input": conversation("x")})
    assert invoked.status_code == 200
    assert invoked.json()["output"]["content"] == "Hello from Parley"
    assert [o["content"] for o in batched.json()["output"]] == ["Hello from Parley"] * 2
    # The chat playground needs exactly this shape: a messages list in, an AI message out.
    assert list(input_schema["properties"]) == ["messages"]
    assert input_schema["properties"]["messages"]["type"] == "array"
    assert any("ai" in opt.get("properties", {}).get("type", {}).get("enum", [])
               for opt in output_schema["anyOf"])
    assert bad.status_code == 422
    assert missing.status_code == 404


async def test_a_conversation_that_does_not_end_with_the_user_is_refused(
        make_app, client_for) -> None:
    app = make_app([say("unused")])
    async with client_for(app) as client:
        for endpoint in ("invoke", "stream"):
            response = await client.post(f"/agents/assistant/{endpoint}",
                                         json={"input": conversation("hi", "an answer")})
            assert response.status_code == 422, endpoint
            assert "the last message must be the user's" in response.text
        empty = await client.post("/agents/assistant/invoke",
                                  json={"input": {"messages": []}})
    assert empty.status_code == 422
    assert app.state.model.calls == []  # nothing ran


async def test_the_whole_conversation_reaches_the_model(make_app, client_for) -> None:
    app = make_app([call("add", a=1, b=1), say("Two.")], cycle=False)
    async with client_for(app) as client:
        first = (await client.post("/agents/assistant/invoke",
                                   json={"input": conversation("1+1?")})).json()["output"]
        app.state.model.script.append(say("You asked about 1+1."))
        history = conversation("1+1?", first["content"], "what did I ask?")
        await client.post("/agents/assistant/invoke", json={"input": history})
    assert "🛠 add" in first["content"] and first["content"].endswith("Two.")
    last_prompt = app.state.model.calls[-1]
    texts = [m.content for m in last_prompt]
    assert texts[1:] == ["1+1?", "Two.", "what did I ask?"]  # the tool note was stripped


async def test_invoke_gives_the_text_a_stream_adds_up_to_without_streaming_tokens(
        make_app, live, monkeypatch) -> None:
    from agents.fake import ScriptedChatModel

    turn = [call("add", "Let me add that.", a=1, b=1), say("It is two.")]
    app = make_app([*turn, *turn], cycle=False)
    streamed_calls = 0
    real_astream = ScriptedChatModel._astream

    def counting_astream(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal streamed_calls
        streamed_calls += 1
        return real_astream(self, *args, **kwargs)

    monkeypatch.setattr(ScriptedChatModel, "_astream", counting_astream)
    with live(app) as url:
        remote: RemoteRunnable = RemoteRunnable(f"{url}/agents/assistant/")
        invoked = await remote.ainvoke({"messages": [HumanMessage("1+1?")]})
        invoke_streamed = streamed_calls
        chunks = [c async for c in remote.astream({"messages": [HumanMessage("1+1?")]})]
    streamed = "".join(c.content for c in chunks)
    assert streamed == "Let me add that.\n\n🛠 add\n\nIt is two."
    assert invoked.content == streamed
    assert invoke_streamed == 0 and streamed_calls == 2  # tokens only when streaming


async def test_remote_runnable_against_a_real_server(make_app, live) -> None:
    app = make_app([say("Streaming works fine")])
    with live(app) as url:
        remote: RemoteRunnable = RemoteRunnable(f"{url}/agents/assistant/")
        result = await remote.ainvoke({"messages": [HumanMessage("hi")]})
        chunks = [c async for c in remote.astream({"messages": [HumanMessage("hi")]})]
        events = [e async for e in remote.astream_events(
            {"messages": [HumanMessage("hi")]}, version="v2")]
        batch = await remote.abatch([{"messages": [HumanMessage("a")]},
                                     {"messages": [HumanMessage("b")]}])
    assert isinstance(result, AIMessage) or result.content == "Streaming works fine"
    assert result.content == "Streaming works fine"
    assert len(chunks) >= 3 and "".join(c.content for c in chunks) == "Streaming works fine"
    kinds = {e["event"] for e in events}
    assert {"on_chain_start", "on_chat_model_stream", "on_chain_end"} <= kinds
    assert [b.content for b in batch] == ["Streaming works fine"] * 2
    await asyncio.sleep(0)


async def test_a_turn_with_a_tool_call_streams_its_events_and_log(make_app, live) -> None:
    """The graph sends tool calls on with LangGraph's `Send`, which the run's log and its
    events carry as a step's output: they reach the client, the stream does not break.
    The log is read as the playground reads it (RemoteRunnable's `astream_log` cannot
    decode a tool run's entry, whose run type "tool" it takes for a ToolMessage)."""
    script = [call("add", a=2, b=5), say("The sum is 7."),
              call("add", a=1, b=1), say("The sum is 2.")]
    app = make_app(script, cycle=False)
    with live(app) as url:
        remote: RemoteRunnable = RemoteRunnable(f"{url}/agents/assistant/")
        events = [e async for e in remote.astream_events(
            {"messages": [HumanMessage("what is 2+5?")]}, version="v2")]
        async with httpx.AsyncClient(timeout=30) as client:
            log = await client.post(f"{url}/agents/assistant/stream_log", json={
                "input": {"messages": [{"type": "human", "content": "what is 1+1?"}]}})
    ends = [e for e in events if e["event"] == "on_tool_end"]
    assert [e["name"] for e in ends] == ["add"]
    assert events[-1]["event"] == "on_chain_end"
    assert events[-1]["data"]["output"].content.endswith("The sum is 7.")
    assert log.status_code == 200
    parts = sse_events(log.text)
    assert [name for name, *_ in parts].count("error") == 0
    assert parts[-1][0] == "end"
    ops = [op for name, _id, data in parts if name == "data" for op in data["ops"]]
    assert any(op["path"] == "/logs/add/final_output" for op in ops)
    assert any(op["path"] == "/final_output" and "sum is 2" in str(op["value"]) for op in ops)
