"""The scripted model the tests and the bench run on: it must stream like a provider."""

from __future__ import annotations

import asyncio

from agents.fake import ScriptedChatModel, call, say


async def test_other_tasks_run_between_streamed_chunks() -> None:
    """A provider's stream waits on the network between chunks, so a server forwards each
    token as it comes; a model that never yields would deliver them all at the end."""
    model = ScriptedChatModel(script=[say("one two three four")])
    chunks: list[str] = []
    seen_while_streaming: list[int] = []

    async def watch() -> None:
        while True:
            seen_while_streaming.append(len(chunks))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)
    async for chunk in model.astream("hi"):
        chunks.append(str(chunk.content))
    watcher.cancel()
    assert "".join(chunks) == "one two three four"
    # The watcher saw the stream part-way through, not just before and after it.
    assert {n for n in seen_while_streaming if 0 < n < len(chunks)}


async def test_async_calls_follow_the_script() -> None:
    model = ScriptedChatModel(script=[call("add", a=1, b=2), say("3")])
    first = await model.ainvoke("1+2?")
    second = await model.ainvoke("and?")
    assert first.tool_calls[0]["args"] == {"a": 1, "b": 2} and second.content == "3"
    assert len(model.calls) == 2
