"""Browser sessions remember what the account page shows about them: the browser's
``User-Agent`` (truncated) and the address it signed in from.

Existing rows get ``""`` (unknown): the account page lists them without those details.

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Constant server defaults: both databases add these NOT NULL columns in place.
    op.add_column(
        "browser_sessions",
        sa.Column("user_agent", sa.String(256), nullable=False, server_default=""),
    )
    op.add_column(
        "browser_sessions",
        sa.Column("address", sa.String(64), nullable=False, server_default=""),
    )


def downgrade() -> None:
    with op.batch_alter_table("browser_sessions") as batch:
        batch.drop_column("address")
        batch.drop_column("user_agent")
