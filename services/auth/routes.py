"""The auth API under `/auth`: register, login, refresh, logout, profile, JWKS.

No `from __future__ import annotations` here: FastAPI must see the dependency aliases
defined inside `build_router` as real objects, not as strings it cannot resolve.
"""


from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from services.auth import crud
from services.auth.context import AuthContext
from services.auth.models import User
from services.auth.schemas import (
    Credentials,
    ProfileUpdate,
    RefreshRequest,
    Registration,
    TokenPair,
    UserOut,
)
from services.auth.security import issue_access_token, verify_password
from services.database import health_router
from services.tokens import InvalidToken

WRONG_CREDENTIALS = "wrong username or password"


def build_router(ctx: AuthContext) -> APIRouter:
    settings = ctx.settings
    router = APIRouter(prefix="/auth", tags=["auth"])
    oauth2 = OAuth2PasswordBearer(tokenUrl="/auth/login", auto_error=False)

    def get_session() -> Iterator[Session]:
        with ctx.sessions() as session:
            yield session

    SessionDep = Annotated[Session, Depends(get_session)]

    def current_user(session: SessionDep,
                     token: Annotated[str | None, Depends(oauth2)]) -> User:
        if not token:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing access token",
                                headers={"WWW-Authenticate": "Bearer"})
        try:
            principal = ctx.verifier.verify(token)
        except InvalidToken as exc:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"invalid access token: "
                                f"{exc.reason}", headers={"WWW-Authenticate": "Bearer"}) from exc
        user = session.get(User, int(principal.user_id))
        if user is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "the user no longer exists")
        return user

    CurrentUser = Annotated[User, Depends(current_user)]

    def roles(user: User) -> list[str]:
        return ["user", "admin"] if user.username in settings.admin_usernames else ["user"]

    def user_out(user: User) -> UserOut:
        return UserOut.model_validate(user).model_copy(update={"roles": roles(user)})

    def pair(session: Session, user: User, refresh: str | None = None) -> TokenPair:
        access = issue_access_token(keys=ctx.keys, user_id=user.id, username=user.username,
                                    roles=roles(user), issuer=settings.issuer,
                                    audience=settings.audience,
                                    ttl=settings.access_ttl_seconds)
        refresh = refresh or crud.start_refresh_family(
            session=session, user_id=user.id, ttl=settings.refresh_ttl_seconds)
        return TokenPair(access_token=access, refresh_token=refresh,
                         expires_in=settings.access_ttl_seconds)

    @router.post("/register", response_model=UserOut, status_code=status.HTTP_201_CREATED)
    def register(body: Registration, session: SessionDep) -> UserOut:
        if crud.get_user_by_username(session=session, username=body.username):
            raise HTTPException(status.HTTP_409_CONFLICT,
                                f"username {body.username!r} is taken: choose another")
        try:
            user = crud.create_user(session=session, username=body.username,
                                    password=body.password)
        except IntegrityError as exc:  # a concurrent registration won the race
            raise HTTPException(status.HTTP_409_CONFLICT,
                                f"username {body.username!r} is taken") from exc
        return user_out(user)

    @router.post("/login", response_model=TokenPair)
    async def login(request: Request) -> TokenPair:
        # JSON for programs, the OAuth2 password form for Swagger's Authorize button.
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                creds = Credentials.model_validate(await request.json())
            except ValueError as exc:
                raise HTTPException(422, "send JSON {\"username\", \"password\"}") from exc
        else:
            form = await request.form()
            try:
                creds = Credentials(username=str(form.get("username", "")),
                                    password=str(form.get("password", "")))
            except ValueError as exc:
                raise HTTPException(422, "send the form fields username and password") from exc
        client = request.client.host if request.client else "unknown"
        # Password hashing is slow on purpose: keep it off the event loop.
        return await run_in_threadpool(_login, creds, client)

    def _login(creds: Credentials, client: str) -> TokenPair:
        keys = [f"user:{creds.username.lower()}", f"ip:{client}"]
        wait = ctx.limiter.retry_after(keys)
        if wait:
            raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                                f"too many failed logins: try again in {wait} s",
                                headers={"Retry-After": str(wait)})
        with ctx.sessions() as session:
            user = crud.get_user_by_username(session=session, username=creds.username)
            if not verify_password(creds.password, user.password_hash if user else None) \
                    or user is None:
                ctx.limiter.record_failure(keys)
                raise HTTPException(status.HTTP_401_UNAUTHORIZED, WRONG_CREDENTIALS,
                                    headers={"WWW-Authenticate": "Bearer"})
            ctx.limiter.reset([keys[0]])
            return pair(session, user)

    @router.post("/refresh", response_model=TokenPair)
    def refresh(body: RefreshRequest, session: SessionDep) -> TokenPair:
        try:
            user_id, new_refresh = crud.rotate_refresh(
                session=session, token=body.refresh_token, ttl=settings.refresh_ttl_seconds)
        except crud.RefreshRejected as exc:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from exc
        user = session.get(User, user_id)
        if user is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "the user no longer exists")
        return pair(session, user, new_refresh)

    @router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
    def logout(body: RefreshRequest, session: SessionDep) -> Response:
        family = crud.family_of(session=session, token=body.refresh_token)
        if family is not None:
            crud.revoke_family(session=session, family_id=family)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get("/me", response_model=UserOut)
    def me(user: CurrentUser) -> UserOut:
        return user_out(user)

    @router.patch("/me", response_model=UserOut)
    def update_me(body: ProfileUpdate, user: CurrentUser, session: SessionDep) -> UserOut:
        changed = crud.update_profile(session=session, user=user,
                                      changes=body.model_dump(exclude_unset=True))
        return user_out(changed)

    @router.get("/.well-known/jwks.json")
    def jwks() -> dict[str, object]:
        return ctx.keys.jwks()

    router.include_router(health_router("", ctx.sessions))
    return router

