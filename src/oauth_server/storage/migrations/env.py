"""Alembic environment. Migrations run through :func:`oauth_server.storage.migrate.upgrade`,
which hands us an open connection (``config.attributes["connection"]``)."""

from __future__ import annotations

from alembic import context

from oauth_server.storage.sql.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `oauth-server db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
