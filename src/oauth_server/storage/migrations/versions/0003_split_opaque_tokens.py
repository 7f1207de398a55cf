"""Opaque tokens as split tokens: a time-ordered selector as key, the verifier's SHA-256.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Opaque access tokens issued before this revision stop working (they live an hour at most);
the old table kept only hashes, from which the new form cannot be derived.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Timestamp = sa.BigInteger


def upgrade() -> None:
    op.create_table(
        "opaque_tokens",
        sa.Column("selector", sa.LargeBinary(12), primary_key=True),
        sa.Column("verifier_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("audience", sa.Text, nullable=False),
        sa.Column("issued_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.Column("revoked_at", Timestamp, nullable=True),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_opaque_tokens_expires_at", "opaque_tokens", ["expires_at"])
    op.drop_table("access_tokens")


def downgrade() -> None:
    op.create_table(
        "access_tokens",
        sa.Column("token_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("issued_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.Column("revoked_at", Timestamp, nullable=True),
        sa.Column("audience", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_access_tokens_expires_at", "access_tokens", ["expires_at"])
    op.create_index("ix_access_tokens_client_id", "access_tokens", ["client_id"])
    op.drop_table("opaque_tokens")
