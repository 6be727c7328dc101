"""The auth API under `/auth`: register, login, refresh, logout, profile, JWKS, health.

No `from __future__ import annotations`: FastAPI reads the parameter annotations at runtime.
"""

from typing import Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from services.auth import crud
from services.auth.context import AuthContext
from services.auth.deps import ContextDep, CurrentUser, SessionDep, TokenDep, bind_context
from services.auth.models import User
from services.auth.schemas import (
    AccessToken,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    Credentials,
    ProfileUpdate,
    RefreshRequest,
    Registration,
    TokenPair,
    UserOut,
)
from services.auth.security import hash_password, issue_access_token, verify_password
from services.database import health_router
from services.tokens import is_api_key

WRONG_CREDENTIALS = "wrong username or password"

# The login body, documented for both content types (the endpoint parses it itself).
_LOGIN_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": Credentials.model_json_schema()},
    "application/x-www-form-urlencoded": {"schema": {
        "type": "object", "required": ["username", "password"],
        "properties": {"username": {"type": "string"}, "password": {"type": "string",
                                                                    "format": "password"}}}},
}}}


def user_out(session: Session, user: User) -> UserOut:
    return UserOut.model_validate(user).model_copy(
        update={"roles": crud.roles_of(session=session, user_id=user.id)})


def access_token(ctx: AuthContext, session: Session, user: User) -> str:
    settings = ctx.settings
    return issue_access_token(keys=ctx.keys, user_id=user.id, username=user.username,
                              roles=crud.roles_of(session=session, user_id=user.id),
                              issuer=settings.issuer, audience=settings.audience,
                              ttl=settings.access_ttl_seconds)


def token_pair(ctx: AuthContext, session: Session, user: User,
               refresh_token: str | None = None) -> TokenPair:
    """A fresh access token, with `refresh_token` or the first token of a new family."""
    settings = ctx.settings
    access = access_token(ctx, session, user)
    refresh_token = refresh_token or crud.start_refresh_family(
        session=session, user_id=user.id, ttl=settings.refresh_ttl_seconds)
    return TokenPair(access_token=access, refresh_token=refresh_token,
                     expires_in=settings.access_ttl_seconds)


async def read_credentials(request: Request) -> Credentials:
    """JSON for programs, the OAuth2 password form for Swagger's Authorize button."""
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("application/json"):
            return Credentials.model_validate(await request.json())
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            return Credentials.model_validate({k: form.get(k) for k in ("username", "password")
                                               if isinstance(form.get(k), str)})
    except (ValueError, ValidationError) as exc:  # bad JSON is a ValueError too
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "send a username and a password, as JSON {\"username\", "
                            "\"password\"} or as an OAuth2 password form") from exc
    raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                        "send application/json or application/x-www-form-urlencoded")


def build_router(ctx: AuthContext) -> APIRouter:
    """The routes for `ctx`, to mount in any FastAPI app (`app.include_router(...)`)."""
    router = APIRouter(prefix="/auth", tags=["auth"], dependencies=[Depends(bind_context(ctx))])

    @router.post("/register", response_model=UserOut, status_code=status.HTTP_201_CREATED)
    async def register(body: Registration, auth: ContextDep) -> UserOut:
        # Hashed before the transaction: no connection is held while argon2 runs.
        password_hash = await anyio.to_thread.run_sync(hash_password, body.password,
                                                       limiter=auth.hashing)
        return await run_in_threadpool(_register, auth, body.username, password_hash)

    @router.post("/login", response_model=TokenPair, openapi_extra=_LOGIN_BODY)
    async def login(request: Request, auth: ContextDep) -> TokenPair:
        creds = await read_credentials(request)
        client = request.client.host if request.client else "unknown"
        keys = [f"user:{creds.username.lower()}", f"ip:{client}"]
        wait = await auth.limiter.retry_after(keys)
        if wait:
            raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                                f"too many failed logins: try again in {wait} s",
                                headers={"Retry-After": str(wait)})
        pair = await _login(auth, creds)
        if pair is None:
            await auth.limiter.record_failure(keys)
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, WRONG_CREDENTIALS,
                                headers={"WWW-Authenticate": "Bearer"})
        await auth.limiter.reset(keys[:1])  # the address keeps its count: it may be guessing
        return pair

    @router.post("/refresh", response_model=TokenPair)
    def refresh(body: RefreshRequest, auth: ContextDep) -> TokenPair:
        with auth.write_sessions() as session:
            try:
                user_id, successor = crud.rotate_refresh(
                    session=session, token=body.refresh_token,
                    ttl=auth.settings.refresh_ttl_seconds)
            except crud.RefreshRejected as exc:
                raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from exc
            user = session.get(User, user_id)
            if user is None:
                raise HTTPException(status.HTTP_401_UNAUTHORIZED, "the user no longer exists")
            return token_pair(auth, session, user, successor)

    @router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
    def logout(body: RefreshRequest, auth: ContextDep) -> Response:
        """Ends the login the refresh token belongs to (its whole family). Access tokens
        already issued stay valid until they expire: they are short-lived."""
        with auth.write_sessions() as session:
            family = crud.family_of(session=session, token=body.refresh_token)
            if family is not None:
                crud.revoke_family(session=session, family_id=family)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get("/me", response_model=UserOut)
    def me(user: CurrentUser, session: SessionDep) -> UserOut:
        return user_out(session, user)

    @router.patch("/me", response_model=UserOut)
    def update_me(body: ProfileUpdate, user: CurrentUser, auth: ContextDep) -> UserOut:
        with auth.write_sessions() as session:
            mine = session.get(User, user.id)
            if mine is None:
                raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                                    "the user of this token no longer exists")
            changed = crud.update_profile(session=session, user=mine,
                                          changes=body.model_dump(exclude_unset=True))
            out = user_out(session, changed)
        for listener in auth.on_profile_change:
            listener(str(changed.id))
        return out

    @router.post("/api-keys", response_model=ApiKeyCreated,
                 status_code=status.HTTP_201_CREATED)
    def create_api_key(body: ApiKeyCreate, user: CurrentUser, token: TokenDep,
                       auth: ContextDep) -> ApiKeyCreated:
        """A personal API key, for programs: its secret is in this answer only."""
        if token and is_api_key(token):
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                "create API keys with an access token from /auth/login, "
                                "not with another key")
        with auth.write_sessions() as session:
            key, secret = crud.create_api_key(session=session, user_id=user.id,
                                              name=body.name,
                                              expires_in_days=body.expires_in_days)
            return ApiKeyCreated(**ApiKeyOut.model_validate(key).model_dump(), key=secret)

    @router.get("/api-keys", response_model=list[ApiKeyOut])
    def list_api_keys(user: CurrentUser, session: SessionDep) -> list[ApiKeyOut]:
        return [ApiKeyOut.model_validate(k)
                for k in crud.api_keys_of(session=session, user_id=user.id)]

    @router.delete("/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
    def revoke_api_key(key_id: int, user: CurrentUser, auth: ContextDep) -> Response:
        with auth.write_sessions() as session:
            revoked = crud.revoke_api_key(session=session, user_id=user.id, key_id=key_id)
        if revoked is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"you have no API key {key_id}")
        for listener in auth.on_api_key_revoked:
            listener(revoked)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.post("/api-keys/exchange", response_model=AccessToken)
    def exchange_api_key(token: TokenDep, session: SessionDep, auth: ContextDep
                         ) -> AccessToken:
        """An access token for an API key: how the gateway turns a key into the token the
        services behind it verify."""
        if not token or not is_api_key(token):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                                "send an API key as 'x-api-key' or 'Authorization: Bearer'",
                                headers={"WWW-Authenticate": "Bearer"})
        try:
            user = crud.user_of_api_key(session=session, secret=token)
        except crud.ApiKeyRejected as exc:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc),
                                headers={"WWW-Authenticate": "Bearer"}) from exc
        return AccessToken(access_token=access_token(auth, session, user),
                           expires_in=auth.settings.access_ttl_seconds)

    @router.get("/.well-known/jwks.json")
    def jwks(auth: ContextDep) -> dict[str, Any]:
        return auth.keys.jwks()

    router.include_router(health_router("", ctx.sessions))
    return router


def _register(ctx: AuthContext, username: str, password_hash: str) -> UserOut:
    taken = HTTPException(status.HTTP_409_CONFLICT,
                          f"username {username!r} is taken: choose another")
    with ctx.write_sessions() as session:
        if crud.get_user_by_username(session=session, username=username):
            raise taken
        try:
            user = crud.create_user(session=session, username=username,
                                    password_hash=password_hash)
        except IntegrityError as exc:  # a concurrent registration won the race
            raise taken from exc
        return user_out(session, user)


async def _login(ctx: AuthContext, creds: Credentials) -> TokenPair | None:
    """The token pair when the password matches. The password is checked with no database
    connection held, a few at a time (`ctx.hashing`); an unknown username costs a hash
    check too, so the answer time does not tell whether the account exists."""
    found = await run_in_threadpool(_credentials, ctx, creds.username)
    ok, new_hash = await anyio.to_thread.run_sync(
        verify_password, creds.password, found[1] if found else None, limiter=ctx.hashing)
    if found is None or not ok:
        return None
    return await run_in_threadpool(_issue, ctx, found[0], new_hash)


def _credentials(ctx: AuthContext, username: str) -> tuple[int, str] | None:
    with ctx.sessions() as session:
        return crud.credentials_of(session=session, username=username)


def _issue(ctx: AuthContext, user_id: int, new_hash: str | None) -> TokenPair | None:
    with ctx.write_sessions() as session:  # the new refresh token
        if new_hash:  # hashing parameters were raised since this password was set
            crud.set_password_hash(session=session, user_id=user_id, password_hash=new_hash)
        user = session.get(User, user_id)
        return None if user is None else token_pair(ctx, session, user)
