"""Graph state in Redis (langgraph-checkpoint-redis): interrupted turns resume, also from a
new saver, as after a server restart."""

from __future__ import annotations

from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.checkpoint.redis.aio import AsyncRedisSaver

from agents.fake import ScriptedChatModel, call, say
from graphs.builder import build_graph
from graphs.deps import GraphDeps

ran: list[str] = []


@tool
def send_email(to: str) -> str:
    """Send an email (needs the user's approval)."""
    ran.append(to)
    return f"sent to {to}"


async def test_an_interrupted_turn_resumes_from_redis(redis_url: str) -> None:
    model = ScriptedChatModel(script=[call("send_email", to="ada@example.org"),
                                      say("Done, the email is sent.")])
    builder = build_graph(GraphDeps(model=model, tools=[send_email]))
    config: RunnableConfig = {"configurable": {"thread_id": "u1:approval", "user_id": "u1"}}
    async with AsyncRedisSaver.from_conn_string(redis_url) as saver:
        await saver.asetup()
        graph = builder.compile(checkpointer=saver, interrupt_before=["tools"])
        await graph.ainvoke({"messages": [HumanMessage("email Ada")]}, config)
        paused = await graph.aget_state(config)
        assert paused.next == ("tools",) and ran == []
    # A new saver on the same Redis: what a restarted server would have.
    async with AsyncRedisSaver.from_conn_string(redis_url) as saver:
        graph = builder.compile(checkpointer=saver, interrupt_before=["tools"])
        result = await graph.ainvoke(None, config)
    assert ran == ["ada@example.org"]
    assert isinstance(result["messages"][-2], ToolMessage)
    assert result["messages"][-1].content == "Done, the email is sent."
