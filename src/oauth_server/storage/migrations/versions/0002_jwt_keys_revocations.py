"""JWT access tokens: signing keys, revoked token ids, audiences (RFC 8707) on tokens and clients.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Timestamp = sa.BigInteger


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("generation", sa.Integer, nullable=False, unique=True),
        sa.Column("alg", sa.String(16), nullable=False),
        sa.Column("public_jwk", sa.Text, nullable=False),
        sa.Column("private_key", sa.LargeBinary, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("activates_at", Timestamp, nullable=False),
        sa.Column("removed_at", Timestamp, nullable=True),
    )
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.Column("revoked_at", Timestamp, nullable=False),
    )
    op.create_index("ix_revoked_tokens_expires_at", "revoked_tokens", ["expires_at"])
    with op.batch_alter_table("access_tokens") as batch:
        batch.add_column(sa.Column("audience", sa.Text, nullable=False, server_default=""))
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("resources", sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("resources")
    with op.batch_alter_table("access_tokens") as batch:
        batch.drop_column("audience")
    op.drop_table("revoked_tokens")
    op.drop_table("signing_keys")
