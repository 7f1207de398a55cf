"""Dynamic client registration (RFC 7591, RFC 7592): initial access tokens, and the
registration of each dynamically registered client (its registration access token as a
selector and a SHA-256, the initial access token it came through, the metadata the clients
table does not hold).

Revision ID: 0011
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "initial_access_tokens",
        sa.Column("selector", sa.LargeBinary(12), primary_key=True),
        sa.Column("verifier_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("description", sa.String(255), nullable=False, server_default=""),
        sa.Column("max_clients", sa.Integer, nullable=False),
        sa.Column("clients_registered", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "client_registrations",
        sa.Column("client_id", sa.String(255), primary_key=True),
        sa.Column("token_selector", sa.LargeBinary(12), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("initial_token", sa.LargeBinary(12), nullable=True),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Index("ix_client_registrations_initial_token", "initial_token"),
    )


def downgrade() -> None:
    op.drop_table("client_registrations")
    op.drop_table("initial_access_tokens")
