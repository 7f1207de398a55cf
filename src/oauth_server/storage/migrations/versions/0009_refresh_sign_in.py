"""Refresh tokens remember the sign-in they continue: its auth time and browser-session id,
so that the ID token of a refresh keeps the original's ``auth_time`` (OpenID Connect Core
§12.2) and ``sid``.

Existing rows get ``0`` and ``""``: their refreshes return no ID token (a refresh response
"might not contain an id_token", §12.2) rather than one with a wrong auth time.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Constant server defaults: both databases add these NOT NULL columns in place.
    op.add_column(
        "refresh_tokens", sa.Column("auth_time", sa.BigInteger, nullable=False, server_default="0")
    )
    op.add_column(
        "refresh_tokens",
        sa.Column("session_id", sa.String(64), nullable=False, server_default=""),
    )


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("session_id")
        batch.drop_column("auth_time")
