"""The SQL ``Storage``: one engine, one repository per role."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_server.storage.migrate import current_revision, head_revision, upgrade
from oauth_server.storage.sql.audit import SqlAuditRepository
from oauth_server.storage.sql.batching import BatchWriter, SqliteBatchWriter
from oauth_server.storage.sql.browser import (
    SqlBrowserSessionRepository,
    SqlConsentRepository,
    SqlInteractionRepository,
)
from oauth_server.storage.sql.clients import SqlClientRepository
from oauth_server.storage.sql.codes import SqlAuthorizationCodeRepository
from oauth_server.storage.sql.engine import create_engine, create_sync_sqlite_engine, sqlite_file
from oauth_server.storage.sql.keys import SqlRevocationRepository, SqlSigningKeyRepository
from oauth_server.storage.sql.misc import SqlChangeFeed, SqlMetaRepository
from oauth_server.storage.sql.refresh import SqlRefreshTokenRepository
from oauth_server.storage.sql.registrations import SqlRegistrationRepository
from oauth_server.storage.sql.restaurants import SqlRestaurantRepository
from oauth_server.storage.sql.schema import opaque_tokens
from oauth_server.storage.sql.tokens import SqlAccessTokenRepository
from oauth_server.storage.sql.users import SqlUserRepository

__all__ = ["SqlStorage"]


class SqlStorage:
    def __init__(self, engine: AsyncEngine, *, batch_writer: BatchWriter | None = None) -> None:
        self.engine = engine
        self.clients = SqlClientRepository(engine)
        self.tokens = SqlAccessTokenRepository(engine, batch_writer=batch_writer)
        self.restaurants = SqlRestaurantRepository(engine)
        self.meta = SqlMetaRepository(engine)
        self.changes = SqlChangeFeed(engine)
        self.keys = SqlSigningKeyRepository(engine)
        self.revocations = SqlRevocationRepository(engine)
        self.audit = SqlAuditRepository(engine)
        self.users = SqlUserRepository(engine)
        self.codes = SqlAuthorizationCodeRepository(engine)
        self.refresh_tokens = SqlRefreshTokenRepository(engine)
        self.sessions = SqlBrowserSessionRepository(engine)
        self.consents = SqlConsentRepository(engine)
        self.interactions = SqlInteractionRepository(engine)
        self.registrations = SqlRegistrationRepository(engine)

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 10) -> SqlStorage:
        engine = create_engine(url, pool_size=pool_size)
        path = sqlite_file(url)
        writer = (
            SqliteBatchWriter(
                create_sync_sqlite_engine(path, wait_for_locks=False),
                create_sync_sqlite_engine(path),
                opaque_tokens,
            )
            if path is not None
            else None
        )
        return cls(engine, batch_writer=writer)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    async def migrate(self) -> None:
        await upgrade(self.engine)

    async def schema_is_current(self) -> bool:
        return await current_revision(self.engine) == head_revision()

    def pool_usage(self) -> tuple[int, int]:
        """Connections of this process's pool: checked out now, and the pool's size."""
        pool = self.engine.sync_engine.pool
        checked_out = getattr(pool, "checkedout", None)
        size = getattr(pool, "size", None)
        if checked_out is None or size is None:  # an in-memory database's single connection
            return 0, 1
        return int(checked_out()), int(size())

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.tokens.batch_writer.close()
        await self.engine.dispose()
