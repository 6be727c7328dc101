"""The history API under `/history`. A user sees and deletes only their own data; another
user's thread answers 404, so ids do not leak; admins may read anyone's with `user_id`.

No `from __future__ import annotations`: FastAPI must resolve the aliases defined inside
`build_router`.
"""

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from services.database import health_router
from services.history import crud
from services.history.context import HistoryContext
from services.history.schemas import (
    MessageOut,
    MessagePage,
    MessagesIn,
    StoredCount,
    ThreadOut,
    ThreadPatch,
)
from services.tokens import InvalidToken, Principal, presented_token

audit = logging.getLogger("parley.audit")


def build_router(ctx: HistoryContext) -> APIRouter:
    router = APIRouter(prefix="/history", tags=["history"])

    def get_session() -> Iterator[Session]:
        with ctx.sessions() as session:
            yield session

    def get_write_session() -> Iterator[Session]:
        # Each writing route commits (or rolls back) before it returns: the write lock
        # SQLite takes for it is not held while the response goes out.
        with ctx.write_sessions() as session:
            yield session

    def current_user(request: Request) -> Principal:
        token = presented_token(request.headers, request.cookies)
        if not token:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing access token",
                                headers={"WWW-Authenticate": "Bearer"})
        try:
            return ctx.verifier.verify(token)
        except InvalidToken as exc:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                                f"invalid access token: {exc.reason}",
                                headers={"WWW-Authenticate": "Bearer"}) from exc

    SessionDep = Annotated[Session, Depends(get_session)]
    WriteSessionDep = Annotated[Session, Depends(get_write_session)]
    CurrentUser = Annotated[Principal, Depends(current_user)]

    def owner(user: Principal, user_id: str | None) -> str:
        if user_id is None or user_id == user.user_id:
            return user.user_id
        if not user.is_admin:
            audit.warning("user %s (id %s) was refused user %s's history: not an admin",
                          user.username, user.user_id, user_id, extra={
                              "action": "read_history_refused", "actor": user.user_id,
                              "target": user_id})
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                "reading another user's history needs the admin role")
        audit.warning("admin %s (id %s) read user %s's history", user.username, user.user_id,
                      user_id, extra={"action": "read_history", "actor": user.user_id,
                                      "target": user_id})
        return user_id

    @router.post("/messages", response_model=StoredCount, status_code=201)
    def post_messages(body: MessagesIn, user: CurrentUser, session: WriteSessionDep
                      ) -> StoredCount:
        try:
            stored, duplicates = crud.store_messages(
                session=session, user_id=user.user_id, thread_id=body.thread_id,
                agent=body.agent, messages=body.messages)
            session.commit()
        except DataError as exc:  # e.g. PostgreSQL refuses a NUL character in text
            session.rollback()
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                f"the database refused these messages ({exc.orig}); "
                                "nothing was stored") from exc
        return StoredCount(stored=stored, duplicates=duplicates)

    @router.get("", response_model=MessagePage)
    def get_history(
        user: CurrentUser, session: SessionDep,
        thread_id: Annotated[str, Query(min_length=1, max_length=128)],
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        before: Annotated[str | None, Query(description="cursor from next_before")] = None,
        user_id: Annotated[str | None, Query(description="admins only")] = None,
    ) -> MessagePage:
        uid = owner(user, user_id)
        if crud.get_thread(session=session, user_id=uid, thread_id=thread_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no thread {thread_id!r}")
        try:
            cursor = crud.decode_cursor(before) if before else None
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                "before: invalid cursor; pass the next_before value the "
                                "previous page returned") from exc
        rows, next_seq = crud.page_messages(session=session, user_id=uid,
                                            thread_id=thread_id, limit=limit, before=cursor)
        return MessagePage(messages=[MessageOut.model_validate(r) for r in rows],
                           next_before=crud.encode_cursor(next_seq) if next_seq else None)

    @router.get("/threads", response_model=list[ThreadOut])
    def threads(user: CurrentUser, session: SessionDep,
                limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[ThreadOut]:
        return crud.list_threads(session=session, user_id=user.user_id, limit=limit)

    @router.patch("/threads/{thread_id}", response_model=ThreadOut)
    def rename(thread_id: str, body: ThreadPatch, user: CurrentUser,
               session: WriteSessionDep) -> ThreadOut:
        renamed = crud.rename_thread(session=session, user_id=user.user_id,
                                     thread_id=thread_id, title=body.title)
        if renamed is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no thread {thread_id!r}")
        return renamed

    @router.delete("/threads/{thread_id}", status_code=204)
    def remove(thread_id: str, user: CurrentUser, session: WriteSessionDep) -> Response:
        if not crud.delete_thread(session=session, user_id=user.user_id, thread_id=thread_id):
            session.rollback()
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no thread {thread_id!r}")
        session.commit()
        return Response(status_code=204)

    @router.get("/export", response_class=StreamingResponse,
                responses={200: {"content": {"application/x-ndjson": {}}}})
    def export(user: CurrentUser, since: Annotated[datetime | None, Query(
            description="only messages written since this time (ISO 8601)")] = None,
               ) -> StreamingResponse:
        def lines() -> Iterator[str]:
            with ctx.sessions() as session:
                yield from crud.export_lines(session=session, user_id=user.user_id,
                                             since=since)

        return StreamingResponse(lines(), media_type="application/x-ndjson", headers={
            "Content-Disposition": 'attachment; filename="parley-history.jsonl"'})

    router.include_router(health_router("", ctx.sessions))
    return router
