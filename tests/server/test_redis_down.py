"""Chat while Redis is down: the rate limit cannot be checked, so requests are refused
with 503 and Retry-After (or, when the operator chose so, let through, to be refused the
same way by the store the turn's events are kept in); either way before any stream
starts, and the client is told the store failed, not the model."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from agents.fake import say
from server.embedded.redis_server import start_redis


async def test_chat_while_redis_is_down(make_app: Any, client_for: Any) -> None:
    data = Path(tempfile.mkdtemp(prefix="parley-down-"))
    redis = start_redis(data)
    try:
        refusing = make_app([say("hi")], redis_url=redis.url)
        allowing = make_app([say("hi")], redis_url=redis.url,
                            rate_limit_when_redis_down="allow")
        async with client_for(refusing) as client, client_for(allowing) as lenient:
            assert (await client.post("/chat", json={"message": "hi"})).status_code == 200
            redis.stop()
            refused = await client.post("/chat/stream", json={"message": "hi"})
            failed = await lenient.post("/chat/stream", json={"message": "hi"})
            redis = start_redis(data, port=redis.port)
            back = await client.post("/chat", json={"message": "hi again"})
    finally:
        redis.stop()
        shutil.rmtree(data, ignore_errors=True)
    assert refused.status_code == 503 and refused.headers["retry-after"]
    assert "store is unavailable" in refused.json()["detail"]
    assert failed.status_code == 503 and failed.headers["retry-after"]
    assert "store is unavailable" in failed.json()["detail"]
    assert str(redis.port) not in failed.text and "model" not in failed.text
    assert back.status_code == 200 and back.json()["error"] is None
