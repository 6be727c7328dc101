"""Plain keyword-only functions over the database: users and refresh-token families."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.auth.models import RefreshToken, User, utcnow
from services.auth.security import hash_password, new_refresh_token, token_hash


def get_user_by_username(*, session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username.lower()))


def create_user(*, session: Session, username: str, password: str) -> User:
    user = User(username=username.lower(), password_hash=hash_password(password))
    session.add(user)
    session.commit()
    return user


def update_profile(*, session: Session, user: User, changes: dict[str, str | None]) -> User:
    for field, value in changes.items():
        setattr(user, field, value)
    session.commit()
    return user


def start_refresh_family(*, session: Session, user_id: int, ttl: int) -> str:
    return _issue(session=session, user_id=user_id, family_id=uuid.uuid4().hex, ttl=ttl)


def _issue(*, session: Session, user_id: int, family_id: str, ttl: int) -> str:
    token = new_refresh_token()
    session.add(RefreshToken(token_hash=token_hash(token), family_id=family_id, user_id=user_id,
                             expires_at=utcnow() + timedelta(seconds=ttl)))
    session.commit()
    return token


class RefreshRejected(Exception):
    pass


def rotate_refresh(*, session: Session, token: str, ttl: int) -> tuple[int, str]:
    """Spend `token` and issue its successor in the same family. A token presented a second
    time revokes its whole family."""
    row = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_hash(token))
                         .with_for_update())
    if row is None:
        raise RefreshRejected("unknown refresh token")
    if row.revoked_at is not None:
        raise RefreshRejected("refresh token revoked: log in again")
    if row.used_at is not None:
        revoke_family(session=session, family_id=row.family_id)
        raise RefreshRejected("refresh token reused: every session of this login is revoked")
    if row.expires_at <= utcnow():
        raise RefreshRejected("refresh token expired: log in again")
    row.used_at = utcnow()
    session.commit()
    return row.user_id, _issue(session=session, user_id=row.user_id, family_id=row.family_id,
                               ttl=ttl)


def revoke_family(*, session: Session, family_id: str) -> None:
    session.execute(update(RefreshToken).where(RefreshToken.family_id == family_id,
                                               RefreshToken.revoked_at.is_(None))
                    .values(revoked_at=utcnow()))
    session.commit()


def family_of(*, session: Session, token: str) -> str | None:
    return session.scalar(select(RefreshToken.family_id)
                          .where(RefreshToken.token_hash == token_hash(token)))
