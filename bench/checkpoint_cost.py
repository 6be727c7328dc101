"""What keeping a thread's last N checkpoints costs in Redis: the bytes one thread holds
(its latest checkpoint, the older ones kept, their pending writes) after a conversation
of 20 turns of about 100 words each, with the window folding at its usual budget, for
`/chat`'s one checkpoint a turn and the Agent Protocol's one a step.

    python -m bench.checkpoint_cost     (also part of `make bench`)
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from redis.asyncio import Redis

from agents.fake import ScriptedChatModel
from graphs.builder import build_graph
from graphs.context import TurnContext, run_config
from graphs.deps import GraphDeps
from memory.redis_checkpointer import RedisStringSaver
from server.embedded.redis_server import start_redis

TURNS = 20
WORDS = 100


def answer(messages: list[BaseMessage]) -> AIMessage:
    asked = next(m.text for m in reversed(messages) if m.type == "human")
    return AIMessage(" ".join(f"{asked[:12]}-{i}" for i in range(WORDS)))


async def thread_bytes(redis: Redis, *, keep: int, durability: Any, thread: str) -> int:
    saver = RedisStringSaver(redis, ttl_seconds=3600, keep=keep, prefix="bench:cp")
    graph = build_graph(GraphDeps(model=ScriptedChatModel(script=[answer], cycle=True),
                                  window_tokens=3000)).compile(checkpointer=saver)
    ctx = TurnContext(user_id="bench", thread_id=thread, agent="assistant")
    for turn in range(TURNS):
        words = " ".join(f"question{turn}-{i}" for i in range(WORDS // 4))
        await graph.ainvoke({"messages": [HumanMessage(words)]}, run_config(ctx),
                            context=ctx, durability=durability)
    total = 0
    async for key in redis.scan_iter(f"bench:cp:{ctx.thread_key}:*"):
        total += int(await redis.memory_usage(key, samples=0) or 0)
    return total


async def checkpoint_costs(redis_url: str) -> dict[str, Any]:
    redis = Redis.from_url(redis_url)
    costs: dict[str, Any] = {"turns": TURNS, "words_per_answer": WORDS}
    try:
        for durability, label in (("exit", "chat"), ("async", "agent_protocol")):
            for keep in (1, 10, 20):
                thread = f"{label}-{keep}"
                costs[f"{label}_keep_{keep}_kb"] = round(
                    await thread_bytes(redis, keep=keep, durability=durability,
                                       thread=thread) / 1024, 1)
    finally:
        await redis.aclose()
    return costs


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="parley-checkpoints-"))
    redis = start_redis(data)
    try:
        costs = asyncio.run(checkpoint_costs(redis.url))
    finally:
        redis.stop()
        shutil.rmtree(data, ignore_errors=True)
    json.dump(costs, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
