"""The expiry sweep never drops an approval it could not expire: a store that fails on
one entry, a claim held by a decision under way; and a backlog past one batch is worked
off in one round (redis-server; a real Parley on 127.0.0.1 for the end-to-end case)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from graphs.context import thread_key
from server.approval.expiry import BATCH, expire_due
from server.approval.store import RedisApprovalStore
from tests.server.api.openai.support import login
from tests.server.api.test_approval import decide, paused, stored_postcard_answers
from tests.server.conftest import AppFactory, Probe
from tests.support.agent_protocol import api_key, scripted, settings_for

EXPIRING = "parley:approval:expiring"


class FlakyCheckpointer:
    """No thread has a checkpoint, and reading thread "boom" fails as a Redis blip."""

    async def aget_tuple(self, config: dict[str, Any]) -> None:
        if config["configurable"]["thread_id"].endswith(":boom"):
            raise ConnectionError("the store blinked")
        return None


async def test_a_failing_entry_is_tried_again_and_the_rest_are_not_lost(
        redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        store = RedisApprovalStore(client)
        threads = ["boom", *(f"t{i}" for i in range(BATCH + 10))]  # past one batch
        for thread in threads:
            await store.expire_at({"user_id": "u", "thread_id": thread,
                                   "approval_id": f"a-{thread}"}, 100.0)
        platform = SimpleNamespace(approvals=store, checkpointer=FlakyCheckpointer(),
                                   agents={})
        await expire_due(cast(Any, platform), cast(Any, None), now=1000.0, retry_in=30.0)
        left = cast("list[tuple[bytes, float]]",
                    await client.zrange(EXPIRING, 0, -1, withscores=True))
        assert [(json.loads(m)["thread_id"], score) for m, score in left] == [
            ("boom", 1030.0)]  # tried again next round; the others had nothing to do
    finally:
        await client.aclose()


@pytest.mark.parametrize("held", ["claim", "thread"])
def test_an_approval_expires_only_once_what_holds_it_is_let_go(
        make_auth_app: AppFactory, live: Any, redis_url: str, tmp_path: Path,
        probe: Probe, held: str) -> None:
    """A decision under way (its claim), or another message or run on the paused thread
    (its lease), goes first: the expiry waits for it, and is not dropped meanwhile."""
    # The deadline lies far enough ahead that the hold below is taken before it, however
    # slow the machine (the graph itself tells an expired approval by its deadline).
    timeout = 4.0
    sweep = timeout / 4
    app = make_auth_app([scripted], **settings_for(redis_url, tmp_path / "data",
                                                   approval_timeout_seconds=timeout))
    plain = redis.Redis.from_url(redis_url, decode_responses=True)
    with live(app) as url, httpx.Client(base_url=url, timeout=30, headers={
            "x-api-key": api_key(url, "ada")}) as http:
        thread = paused(http)["thread_id"]
        [(member, deadline)] = cast("list[tuple[str, float]]",
                                    plain.zrange(EXPIRING, 0, -1, withscores=True))
        entry = json.loads(member)
        busy = f"parley:ap:busy:{thread_key(entry['user_id'], thread)}"
        holder = {"claim": f"parley:approval:claim:{entry['user_id']}:{entry['approval_id']}",
                  "thread": busy}[held]
        assert plain.set(holder, "1", nx=True, px=60_000)
        assert time.time() < deadline, "the hold came too late to test anything"
        time.sleep(deadline - time.time() + 2 * sweep + 0.2)  # two sweeps while it is held
        assert http.get(f"/chat/threads/{thread}/approval").status_code == 200
        assert plain.zcard(EXPIRING) == 1  # kept for a later round, not dropped
        plain.delete(holder)  # that decision or turn ended without going on
        token = {"Authorization": f"Bearer {login(url, 'ada')}"}
        answers, _kept = stored_postcard_answers(url, token, thread)
        assert answers and "expired" in answers[0]
        assert decide(http, thread, decision="approve").status_code == 404
        assert plain.get(busy) is None  # the expiry's own hold went with its turn
    plain.close()
    assert probe.posted == []
