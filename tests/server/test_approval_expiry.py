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
import redis
import redis.asyncio as aioredis

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


def test_an_approval_whose_claim_is_held_expires_once_it_is_let_go(
        make_auth_app: AppFactory, live: Any, redis_url: str, tmp_path: Path,
        probe: Probe) -> None:
    app = make_auth_app([scripted], **settings_for(redis_url, tmp_path / "data",
                                                   approval_timeout_seconds=0.5))
    plain = redis.Redis.from_url(redis_url, decode_responses=True)
    with live(app) as url, httpx.Client(base_url=url, timeout=30, headers={
            "x-api-key": api_key(url, "ada")}) as http:
        said = paused(http)
        thread = said["thread_id"]
        [entry] = [json.loads(m) for m in cast("list[str]", plain.zrange(EXPIRING, 0, -1))]
        claim = f"parley:approval:claim:{entry['user_id']}:{entry['approval_id']}"
        assert plain.set(claim, "1", nx=True, px=30_000)  # a decision is under way
        time.sleep(1.5)  # several sweeps pass while it holds the claim
        assert http.get(f"/chat/threads/{thread}/approval").status_code == 200
        assert plain.zcard(EXPIRING) == 1  # kept for a later round, not dropped
        plain.delete(claim)  # that decision ended without going on
        token = {"Authorization": f"Bearer {login(url, 'ada')}"}
        answers, _kept = stored_postcard_answers(url, token, thread)
        assert answers and "expired" in answers[0]
        assert decide(http, thread, decision="approve").status_code == 404
    plain.close()
    assert probe.posted == []
