"""Plain keyword-only functions over the database: users, role grants and refresh-token
families."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from services.auth.models import ApiKey, McpCredential, RefreshToken, RoleGrant, User, utcnow
from services.auth.security import (
    hash_password,
    new_api_key,
    new_refresh_token,
    token_hash,
)

audit = logging.getLogger("parley.audit")

# Every account has "user"; these are granted, one account at a time, by an operator.
GRANTABLE_ROLES = ("admin",)


def get_user_by_username(*, session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username.lower()))


def create_user(*, session: Session, username: str, password: str | None = None,
                password_hash: str | None = None) -> User:
    """Give `password_hash` when it was made beforehand: hashing is slow on purpose, and
    done before the first query it holds no database connection meanwhile."""
    hashed = password_hash or hash_password(password or "")
    user = User(username=username.lower(), password_hash=hashed)
    session.add(user)
    session.commit()
    return user


def credentials_of(*, session: Session, username: str) -> tuple[int, str] | None:
    """The account's id and password hash, to check a password with no connection held."""
    row = session.execute(select(User.id, User.password_hash)
                          .where(User.username == username.lower())).first()
    return None if row is None else (row[0], row[1])


def set_password_hash(*, session: Session, user_id: int, password_hash: str) -> None:
    session.execute(update(User).where(User.id == user_id).values(password_hash=password_hash))
    session.commit()


def get_profile(*, session: Session, user_id: str) -> dict[str, Any] | None:
    """The fields the agents follow, for a user id as tokens carry it."""
    user = session.get(User, int(user_id)) if user_id.isdigit() else None
    if user is None:
        return None
    return {"display_name": user.display_name, "preferred_language": user.preferred_language,
            "custom_instructions": user.custom_instructions}


def update_profile(*, session: Session, user: User, changes: dict[str, Any]) -> User:
    for name, value in changes.items():
        setattr(user, name, value)
    session.commit()
    return user


def roles_of(*, session: Session, user_id: int) -> list[str]:
    granted = session.scalars(select(RoleGrant.role).where(RoleGrant.user_id == user_id)
                              .order_by(RoleGrant.role))
    return ["user", *granted]


class UnknownRole(ValueError):
    pass


def _check_role(role: str) -> None:
    if role not in GRANTABLE_ROLES:
        raise UnknownRole(f"unknown role {role!r}: grantable roles are "
                          f"{', '.join(GRANTABLE_ROLES)}")


def grant_role(*, session: Session, user: User, role: str, granted_by: str) -> bool:
    """Give `user` the role; False when they had it already. Logged for the audit trail."""
    _check_role(role)
    if role in roles_of(session=session, user_id=user.id):
        return False
    session.add(RoleGrant(user_id=user.id, role=role, granted_by=granted_by))
    session.commit()
    audit.warning("role %s granted to user %s (id %d) by %s", role, user.username, user.id,
                  granted_by, extra={"action": "grant", "role": role, "target": str(user.id),
                                     "actor": granted_by})
    return True


def revoke_role(*, session: Session, user: User, role: str, revoked_by: str) -> bool:
    """Take the role back; access tokens already issued keep it until they expire."""
    _check_role(role)
    gone: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        delete(RoleGrant).where(RoleGrant.user_id == user.id, RoleGrant.role == role))
    session.commit()
    if gone.rowcount:
        audit.warning("role %s revoked from user %s (id %d) by %s", role, user.username,
                      user.id, revoked_by, extra={"action": "revoke", "role": role,
                                                  "target": str(user.id), "actor": revoked_by})
    return bool(gone.rowcount)


def role_grants(*, session: Session) -> list[tuple[User, RoleGrant]]:
    rows = session.execute(select(User, RoleGrant).join(RoleGrant, RoleGrant.user_id == User.id)
                           .order_by(User.username, RoleGrant.role))
    return [(user, grant) for user, grant in rows.tuples()]


def start_refresh_family(*, session: Session, user_id: int, ttl: int) -> str:
    token = _add_token(session=session, user_id=user_id, family_id=uuid.uuid4().hex, ttl=ttl)
    session.commit()
    return token


def _add_token(*, session: Session, user_id: int, family_id: str, ttl: int) -> str:
    token = new_refresh_token()
    session.add(RefreshToken(token_hash=token_hash(token), family_id=family_id, user_id=user_id,
                             expires_at=utcnow() + timedelta(seconds=ttl)))
    return token


class RefreshRejected(Exception):
    pass


def rotate_refresh(*, session: Session, token: str, ttl: int) -> tuple[int, str]:
    """Spend `token` and issue its successor in the same family. A token presented a second
    time revokes its whole family: only one of the two presenters is the rightful owner."""
    row = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_hash(token)))
    if row is None:
        raise RefreshRejected("unknown refresh token: log in again")
    if row.revoked_at is not None:
        raise RefreshRejected("refresh token revoked: log in again")
    if row.expires_at <= utcnow():
        raise RefreshRejected("refresh token expired: log in again")
    # Spend it with a conditional UPDATE, so of two concurrent presenters exactly one wins;
    # the successor goes in the same transaction, so a revocation racing with it sees both.
    spent: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None),
               RefreshToken.revoked_at.is_(None))
        .values(used_at=utcnow()).execution_options(synchronize_session=False))
    if spent.rowcount != 1:
        session.rollback()
        revoke_family(session=session, family_id=row.family_id)
        raise RefreshRejected("refresh token reused: every session of this login is revoked")
    successor = _add_token(session=session, user_id=row.user_id, family_id=row.family_id,
                           ttl=ttl)
    session.commit()
    return row.user_id, successor


def revoke_family(*, session: Session, family_id: str) -> None:
    session.execute(update(RefreshToken).where(RefreshToken.family_id == family_id,
                                               RefreshToken.revoked_at.is_(None))
                    .values(revoked_at=utcnow()).execution_options(synchronize_session=False))
    session.commit()


def family_of(*, session: Session, token: str) -> str | None:
    return session.scalar(select(RefreshToken.family_id)
                          .where(RefreshToken.token_hash == token_hash(token)))


def create_api_key(*, session: Session, user_id: int, name: str,
                   expires_in_days: int | None) -> tuple[ApiKey, str]:
    """A new key and its secret, which is not kept: shown to its owner once."""
    secret = new_api_key()
    expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    key = ApiKey(user_id=user_id, name=name, prefix=secret[:12], key_hash=token_hash(secret),
                 expires_at=expires)
    session.add(key)
    session.commit()
    return key, secret


def api_keys_of(*, session: Session, user_id: int) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).where(ApiKey.user_id == user_id)
                                .order_by(ApiKey.id)))


def revoke_api_key(*, session: Session, user_id: int, key_id: int) -> str | None:
    """The revoked key's hash; None when the user has no such key (another user's
    answers the same)."""
    key = session.get(ApiKey, key_id)
    if key is None or key.user_id != user_id:
        return None
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.commit()
    return key.key_hash


# A key's last use is noted to the minute: a program sending many requests with it writes
# once a minute, not once a request.
KEY_USE_NOTED_EVERY = timedelta(minutes=1)


class ApiKeyRejected(Exception):
    pass


def user_of_api_key(*, session: Session, secret: str) -> User:
    """The owner of a valid key (and its use noted); ApiKeyRejected says why not."""
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == token_hash(secret)))
    if key is None:
        raise ApiKeyRejected("unknown API key")
    if key.revoked_at is not None:
        raise ApiKeyRejected("API key revoked")
    now = utcnow()
    if key.expires_at is not None and key.expires_at <= now:
        raise ApiKeyRejected("API key expired")
    user = session.get(User, key.user_id)
    if user is None:
        raise ApiKeyRejected("the user of this API key no longer exists")
    if key.last_used_at is None or now - key.last_used_at >= KEY_USE_NOTED_EVERY:
        key_id = key.id
        # End the read first: on SQLite a read that turns into a write fails at once
        # ("database is locked") when another request wrote meanwhile, where a write
        # that begins afresh waits its turn.
        session.commit()
        session.execute(update(ApiKey).where(ApiKey.id == key_id)
                        .values(last_used_at=now))
        session.commit()
    return user


def set_mcp_credential(*, session: Session, user_id: int, server: str, ciphertext: str
                       ) -> McpCredential:
    """Store (or replace) the user's sealed credential for `server`."""
    row = session.scalar(select(McpCredential).where(McpCredential.user_id == user_id,
                                                     McpCredential.server == server))
    if row is None:
        row = McpCredential(user_id=user_id, server=server, ciphertext=ciphertext)
        session.add(row)
    else:
        row.ciphertext = ciphertext
        row.updated_at = utcnow()
    session.commit()
    return row


def mcp_credentials_of(*, session: Session, user_id: int) -> list[McpCredential]:
    return list(session.scalars(select(McpCredential).where(McpCredential.user_id == user_id)
                                .order_by(McpCredential.server)))


def mcp_credential(*, session: Session, user_id: int, server: str) -> str | None:
    """The sealed credential of the user for `server`, or None."""
    return session.scalar(select(McpCredential.ciphertext).where(
        McpCredential.user_id == user_id, McpCredential.server == server))


def delete_mcp_credential(*, session: Session, user_id: int, server: str) -> bool:
    result = session.execute(delete(McpCredential).where(
        McpCredential.user_id == user_id, McpCredential.server == server))
    session.commit()
    return bool(getattr(result, "rowcount", 0))
