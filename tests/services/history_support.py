"""What the history service's tests share: tokens from a test key, and turns to publish."""

from __future__ import annotations

import uuid

from services.history.schemas import MessageIn, TurnEvent
from tests.support.tokens import TokenFactory

tokens = TokenFactory()
ADA, BOB = tokens.headers("ada"), tokens.headers("bob")
ADMIN = tokens.headers("root", roles=("user", "admin"))


def turn(user: str, thread: str, *contents: str) -> TurnEvent:
    roles = ["user", "assistant"]
    return TurnEvent(event_id=uuid.uuid4().hex, user_id=user, thread_id=thread,
                     agent="assistant", messages=[
                         MessageIn(id=uuid.uuid4().hex, role=roles[i % 2], content=c)  # type: ignore[arg-type]
                         for i, c in enumerate(contents)])
