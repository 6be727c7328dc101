"""message ids unique per user, not across all users

Revision ID: 0002
Revises: 0001

Message ids are chosen by clients, so two users may pick the same one; with ids unique
across all users the second user's message was skipped as a duplicate. The idempotency key
becomes (user_id, id). Rows are kept: SQLite copies the table (batch mode), PostgreSQL
alters it in place.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_PER_USER = "uq_messages_user_id_id"
_GLOBAL = "uq_messages_id"
# SQLite reflects 0001's unnamed UNIQUE (id) without a name; batch mode can drop it only by
# the name this convention gives it while the table is copied.
_SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    old = _unique_name(["id"]) or _GLOBAL  # PostgreSQL named it messages_id_key
    with op.batch_alter_table("messages", naming_convention=_SQLITE_NAMES) as batch:
        batch.drop_constraint(old, type_="unique")
        batch.create_unique_constraint(_PER_USER, ["user_id", "id"])


def downgrade() -> None:
    # Fails if two users now share an id: going back would have to drop one's message.
    with op.batch_alter_table("messages", naming_convention=_SQLITE_NAMES) as batch:
        batch.drop_constraint(_PER_USER, type_="unique")
        batch.create_unique_constraint(_GLOBAL, ["id"])


def _unique_name(columns: list[str]) -> str | None:
    for constraint in sa.inspect(op.get_bind()).get_unique_constraints("messages"):
        if constraint["column_names"] == columns:
            return constraint["name"]
    return None
