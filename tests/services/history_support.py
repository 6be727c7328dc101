"""What the history service's tests share: tokens from a test key, turns to publish, and an
HTTP client on the app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from services.history.app import create_app
from services.history.context import HistoryContext
from services.history.schemas import MessageIn, TurnRecord
from services.history.settings import HistorySettings
from tests.support.tokens import TokenFactory

tokens = TokenFactory()
# Made at import and used all session long: valid for a day, however slow the run.
ADA, BOB = tokens.headers("ada", ttl=86_400), tokens.headers("bob", ttl=86_400)
ADMIN = tokens.headers("root", roles=("user", "admin"), ttl=86_400)


def turn(user: str, thread: str, *contents: str) -> TurnRecord:
    roles = ["user", "assistant"]
    return TurnRecord(event_id=uuid.uuid4().hex, user_id=user, thread_id=thread,
                     agent="assistant", messages=[
                         MessageIn(id=uuid.uuid4().hex, role=roles[i % 2], content=c)  # type: ignore[arg-type]
                         for i, c in enumerate(contents)])


@asynccontextmanager
async def history_client(settings: HistorySettings) -> AsyncIterator[httpx.AsyncClient]:
    """The app, through its lifespan (so its migrations run), behind an in-process client."""
    app = create_app(settings, tokens.verifier())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://h") as client:
            yield client


def message(role: str, content: str, mid: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"id": mid or uuid.uuid4().hex, "role": role, "content": content, **fields}


async def post(client: httpx.AsyncClient, headers: dict[str, str], thread: str,
               *messages: dict[str, Any]) -> httpx.Response:
    return await client.post("/history/messages", headers=headers,
                             json={"thread_id": thread, "messages": list(messages)})


def stored_contents(ctx: HistoryContext, user: str) -> list[str]:
    from sqlalchemy import select

    from services.history.models import Message

    with ctx.sessions() as session:
        return list(session.scalars(select(Message.content).where(Message.user_id == user)
                                    .order_by(Message.seq)))
