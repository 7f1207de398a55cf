"""The audit trail can be queried by client and user: each event's ``client_id`` and
``user_id`` fields are copied into columns of their own (derived data: the hash chain covers
``data``, which stays the record), with indexes on them and on the kind, each followed by the
time, for the admin API's newest-first pages.

Revision ID: 0015
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0011"
branch_labels = None
depends_on = None

_BATCH = 1000


def _queryable(value: object) -> str | None:
    """As the store copies ids to these columns: printable ASCII (RFC 6749 A.1 VSCHAR), at most
    255 characters; a hostile client id's NUL (which PostgreSQL cannot hold in text) is left in
    the event's data only."""
    if isinstance(value, str) and len(value) <= 255 and all(" " <= c <= "~" for c in value):
        return value
    return None


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("client_id", sa.String(256), nullable=True))
    op.add_column("audit_events", sa.Column("user_id", sa.String(256), nullable=True))
    events = sa.table(
        "audit_events",
        sa.column("chain_id", sa.String),
        sa.column("seq", sa.BigInteger),
        sa.column("data", sa.Text),
        sa.column("client_id", sa.String),
        sa.column("user_id", sa.String),
    )
    connection = op.get_bind()
    after: tuple[str, int] = ("", 0)
    while True:
        rows = connection.execute(
            sa.select(events.c.chain_id, events.c.seq, events.c.data)
            .where(sa.tuple_(events.c.chain_id, events.c.seq) > after)
            .order_by(events.c.chain_id, events.c.seq)
            .limit(_BATCH)
        ).all()
        for chain_id, seq, data in rows:
            fields = json.loads(data)
            client_id, user_id = (
                _queryable(fields.get("client_id")),
                _queryable(fields.get("user_id")),
            )
            if client_id is not None or user_id is not None:
                connection.execute(
                    sa.update(events)
                    .where(events.c.chain_id == chain_id, events.c.seq == seq)
                    .values(client_id=client_id, user_id=user_id)
                )
        if len(rows) < _BATCH:
            break
        after = (rows[-1][0], rows[-1][1])
    op.create_index("ix_audit_events_kind_at_ms", "audit_events", ["kind", "at_ms"])
    op.create_index("ix_audit_events_client_id_at_ms", "audit_events", ["client_id", "at_ms"])
    op.create_index("ix_audit_events_user_id_at_ms", "audit_events", ["user_id", "at_ms"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_user_id_at_ms", "audit_events")
    op.drop_index("ix_audit_events_client_id_at_ms", "audit_events")
    op.drop_index("ix_audit_events_kind_at_ms", "audit_events")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("user_id")
        batch.drop_column("client_id")
