"""The audit trail: security events in hash chains, one chain per writing process.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

Purging expired tokens, revocations and change-feed rows needs no new index: each table is
already indexed on the column the purge selects by (``expires_at``, ``created_at``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("chain_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("digest", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "seq", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_at_ms", "audit_events", ["at_ms"])


def downgrade() -> None:
    op.drop_table("audit_events")
