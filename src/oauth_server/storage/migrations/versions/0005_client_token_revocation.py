"""Client-wide token revocation and introspection rights.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

``client_revocations``: every access token issued to ``client_id`` at or before ``revoked_at``
is void (the client was deleted, or ``clients revoke-tokens`` ran); a row may go once
``expires_at`` has passed, when no token it covers can still be accepted.

``clients.introspect``: the audiences (RFC 8707 resource identifiers) whose tokens the client
may introspect as a resource server (RFC 7662 §2.1); empty for every existing client, which
from now on learns only about its own tokens.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "client_revocations",
        sa.Column("client_id", sa.String(255), primary_key=True),
        sa.Column("revoked_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_client_revocations_expires_at", "client_revocations", ["expires_at"])
    op.add_column("clients", sa.Column("introspect", sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    op.drop_column("clients", "introspect")
    op.drop_table("client_revocations")
