"""The graph every benchmark runs: one tool call, then about 50 streamed tokens, from a
scripted model that never sleeps, so what is measured is the platform, not a model."""

from __future__ import annotations

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import tool

from agents.fake import ScriptedChatModel, call, say
from graphs.builder import build_graph
from graphs.deps import GraphDeps

ANSWER = " ".join(f"word{i}" for i in range(50))


@tool
def lookup(key: str) -> str:
    """Look a key up."""
    return f"value of {key}"


def respond(messages: list[BaseMessage]) -> AIMessage:
    if messages and messages[-1].type == "tool":
        return say(ANSWER)
    return call("lookup", key="answer")


def bench_model() -> ScriptedChatModel:
    return ScriptedChatModel(script=[respond], cycle=True, record=False)


def bench_builder():  # type: ignore[no-untyped-def]
    return build_graph(GraphDeps(model=bench_model(), tools=[lookup]))
