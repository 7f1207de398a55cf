"""Sign-in storage: authorization codes, refresh-token families, the access tokens issued
from them, browser sessions, consents and interactions. Only hashes of the secrets.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = (
    "interactions",
    "consents",
    "browser_sessions",
    "issued_tokens",
    "refresh_tokens",
    "refresh_families",
    "authorization_codes",
)


def upgrade() -> None:
    op.create_table(
        "authorization_codes",
        sa.Column("selector", sa.LargeBinary(12), primary_key=True),
        sa.Column("verifier_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("code_challenge_method", sa.String(16), nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("nonce", sa.Text, nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("auth_time", sa.BigInteger, nullable=False),
        sa.Column("issued_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("used_at", sa.BigInteger, nullable=True),
        sa.Column("replayed_at", sa.BigInteger, nullable=True),
        sa.Column("refresh_family_id", sa.String(64), nullable=True),
        sa.Index("ix_authorization_codes_expires_at", "expires_at"),
    )

    op.create_table(
        "refresh_families",
        sa.Column("family_id", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
        sa.Index("ix_refresh_families_user_id", "user_id"),
        sa.Index("ix_refresh_families_expires_at", "expires_at"),
    )

    op.create_table(
        "refresh_tokens",
        sa.Column("selector", sa.LargeBinary(12), primary_key=True),
        sa.Column("verifier_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("family_id", sa.String(64), nullable=False),
        sa.Column("parent", sa.LargeBinary(12), nullable=True),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("issued_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("rotated_at", sa.BigInteger, nullable=True),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
        # Set by the one grace-window retry a rotated token is allowed.
        sa.Column("grace_used", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Index("ix_refresh_tokens_family_id", "family_id"),
        sa.Index("ix_refresh_tokens_expires_at", "expires_at"),
        # A rotated token's successor(s): the reuse check looks them up by parent.
        sa.Index("ix_refresh_tokens_parent", "parent"),
    )

    op.create_table(
        "issued_tokens",
        # Access tokens issued from a code or a refresh family, voided if that code is replayed
        # or that family revoked.
        sa.Column("token_id", sa.String(64), primary_key=True),
        sa.Column("token_format", sa.String(16), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("code_selector", sa.LargeBinary(12), nullable=True),
        sa.Column("family_id", sa.String(64), nullable=True),
        sa.Index("ix_issued_tokens_code_selector", "code_selector"),
        sa.Index("ix_issued_tokens_family_id", "family_id"),
        sa.Index("ix_issued_tokens_expires_at", "expires_at"),
    )

    op.create_table(
        "browser_sessions",
        sa.Column("selector", sa.LargeBinary(12), primary_key=True),
        sa.Column("verifier_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("auth_time", sa.BigInteger, nullable=False),
        sa.Column("amr", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_seen", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("ended_at", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("session_id", name="uq_browser_sessions_session_id"),
        sa.Index("ix_browser_sessions_user_id", "user_id"),
        sa.Index("ix_browser_sessions_expires_at", "expires_at"),
    )

    op.create_table(
        "consents",
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "client_id", name="pk_consents"),
    )

    op.create_table(
        "interactions",
        sa.Column("selector", sa.LargeBinary(12), primary_key=True),
        sa.Column("verifier_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("browser_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("auth_time", sa.BigInteger, nullable=True),
        sa.Column("amr", sa.Text, nullable=False, server_default=""),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("consented", sa.Text, nullable=True),
        sa.Column("completed_at", sa.BigInteger, nullable=True),
        sa.Index("ix_interactions_expires_at", "expires_at"),
    )


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
