"""Client registration for sign-in: client type, token endpoint auth methods, redirect URIs,
post-logout redirect URIs, consent and PKCE switches.

Existing rows become what they were: confidential clients that may authenticate with either
secret method (``client_secret_basic`` or ``client_secret_post``), with no redirect URIs,
consent and PKCE required (they have no grant that asks for either).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COLUMNS = (
    "client_type",
    "auth_methods",
    "redirect_uris",
    "post_logout_redirect_uris",
    "require_consent",
    "require_pkce",
)


def upgrade() -> None:
    # Constant server defaults: both databases add these NOT NULL columns in place.
    columns: list[sa.Column[object]] = [
        sa.Column("client_type", sa.String(16), nullable=False, server_default="confidential"),
        sa.Column(
            "auth_methods",
            sa.Text,
            nullable=False,
            server_default="client_secret_basic client_secret_post",
        ),
        sa.Column("redirect_uris", sa.Text, nullable=False, server_default=""),
        sa.Column("post_logout_redirect_uris", sa.Text, nullable=False, server_default=""),
        sa.Column("require_consent", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("require_pkce", sa.Boolean, nullable=False, server_default=sa.true()),
    ]
    for column in columns:
        op.add_column("clients", column)


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        for column in reversed(_COLUMNS):
            batch.drop_column(column)
