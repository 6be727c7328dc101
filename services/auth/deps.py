"""FastAPI dependencies of the auth routes, as `Annotated` aliases.

The routes are built for one `AuthContext` (`routes.build_router(ctx)`), and the router
hands it to these through `request.state` (its first dependency, `bind_context`): so the
aliases live here, at module level, yet nothing is global and the router mounts anywhere.
"""

from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from services.auth import crud
from services.auth.context import AuthContext
from services.auth.models import User
from services.tokens import InvalidToken, Principal, is_api_key, presented_token

_STATE_KEY = "parley_auth_context"

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/login", auto_error=False)


def bind_context(ctx: AuthContext) -> Callable[[Request], Awaitable[None]]:
    async def bind(request: Request) -> None:
        setattr(request.state, _STATE_KEY, ctx)

    return bind


def get_context(request: Request) -> AuthContext:
    ctx = getattr(request.state, _STATE_KEY, None)
    if ctx is None:
        raise RuntimeError("auth dependencies used outside a router from build_router(ctx)")
    return ctx  # type: ignore[no-any-return]


ContextDep = Annotated[AuthContext, Depends(get_context)]


def get_session(ctx: ContextDep) -> Iterator[Session]:
    with ctx.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def presented(request: Request, bearer: Annotated[str | None, Depends(oauth2_scheme)]
              ) -> str | None:
    """An access token or API key: `Authorization: Bearer`, else `x-api-key`, else the
    login page's cookie, with which the chat page reads and changes its user's profile
    (cross-site cookie writes are refused by server.csrf)."""
    return (bearer or request.headers.get("x-api-key", "").strip()
            or presented_token(request.headers, request.cookies) or None)


TokenDep = Annotated[str | None, Depends(presented)]


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message,
                         headers={"WWW-Authenticate": "Bearer"})


def get_principal(ctx: ContextDep, token: TokenDep, session: SessionDep) -> Principal:
    if not token:
        raise _unauthorized("missing access token: send 'Authorization: Bearer <token>' "
                            "from POST /auth/login, or an API key")
    if is_api_key(token):
        try:
            user = crud.user_of_api_key(session=session, secret=token)
        except crud.ApiKeyRejected as exc:
            raise _unauthorized(str(exc)) from exc
        return Principal(user_id=str(user.id), username=user.username,
                         roles=tuple(crud.roles_of(session=session, user_id=user.id)))
    try:
        return ctx.verifier.verify(token)
    except InvalidToken as exc:
        raise _unauthorized(f"invalid access token: {exc.reason}") from exc


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_current_user(session: SessionDep, principal: PrincipalDep) -> User:
    user = session.get(User, int(principal.user_id)) if principal.user_id.isdigit() else None
    if user is None:
        raise _unauthorized("the user of this token no longer exists")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_current_admin(user: CurrentUser, session: SessionDep) -> User:
    if "admin" not in crud.roles_of(session=session, user_id=user.id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this needs the admin role")
    return user


CurrentAdmin = Annotated[User, Depends(get_current_admin)]
