"""A thread the server has just named has nothing stored: its first turn reads no
checkpoint from Redis (a round trip a turn saved). A thread a client made, or gave state
to before its first run, is read as always (real uvicorn and redis-server, MONITOR)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from langgraph_sdk import get_sync_client

from tests.support.agent_protocol import Server


@contextmanager
def watched(redis_url: str) -> Iterator[list[tuple[str, ...]]]:
    """Every command Redis runs while the block runs, as (name, *args)."""
    seen: list[tuple[str, ...]] = []
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    ready = threading.Event()

    def listen() -> None:
        with client.monitor() as monitor:
            ready.set()
            for command in monitor.listen():
                if command.get("client_type") == "lua":
                    continue  # what a script does, not what was sent
                words = tuple(str(command["command"]).split())
                if words and words[0].upper() == "ECHO" and "end-of-watch" in words[-1]:
                    return
                seen.append(words)

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    ready.wait(10)
    try:
        yield seen
    finally:
        client.echo("end-of-watch")
        listener.join(10)
        client.close()


def checkpoint_reads(commands: list[tuple[str, ...]], thread_id: str) -> int:
    return sum(1 for name, *args in commands if name.upper() in {"GET", "GETEX"}
               and args and args[0].strip("'\"").endswith(f":{thread_id}:"))


def test_a_new_thread_is_not_read_and_a_kept_one_is(ap_server: Server, redis_url: str
                                                    ) -> None:
    with ap_server.client() as http:
        with watched(redis_url) as first_turn:
            said = http.post("/chat", json={"message": "I am Ada"})
        assert said.status_code == 200, said.text
        thread = said.json()["thread_id"]
        with watched(redis_url) as second_turn:
            again = http.post("/chat", json={"message": "first?", "thread_id": thread})
        assert again.json()["message"]["content"] == "Your first message was: I am Ada"
    assert checkpoint_reads(first_turn, thread) == 0
    assert checkpoint_reads(second_turn, thread) == 1


def test_state_given_before_a_threads_first_run_is_read(ap_server: Server) -> None:
    client: Any = get_sync_client(url=ap_server.url, api_key=ap_server.keys["ada"])
    thread_id = client.threads.create()["thread_id"]
    client.threads.update_state(thread_id, {"messages": [
        {"type": "human", "content": "I am Ada"}, {"type": "ai", "content": "Hello."}]},
        as_node="agent")
    answered = client.runs.wait(thread_id, "assistant", input={"messages": [
        {"role": "user", "content": "first?"}]})
    assert [m["content"] for m in answered["messages"]] == [
        "I am Ada", "Hello.", "first?", "Your first message was: I am Ada"]
