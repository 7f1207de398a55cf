"""The scale data set: 10,000 clients, 1,000,000 opaque tokens and 100,000 revoked JWT ids,
written straight into a migrated database.

Rows are made the way the server makes them (``oauth_server.crypto``: SHA-256 client secrets,
split tokens whose selector starts with the issue time, 128-bit jtis) and inserted in bulk
through the server's own table definitions (``oauth_server.storage.sql.schema``): COPY on
PostgreSQL, one transaction of large executemany batches with ``synchronous=OFF`` on SQLite.
ANALYZE follows, as it would after any bulk load.

The data spans the last 24 hours, issued at an even pace: 80 % of tokens live an hour and 20 %
a day, so about a quarter are still valid; 2 % are revoked. Revoked JWT ids have the same
lifetimes, so about a quarter of them are live too (every server process loads those at
start). Every revocation has its change-feed entry, as the server writes one with each.

By hand, on a database that `oauth-server db upgrade` has migrated:

    cd bench && ../.venv/bin/python -m harness.dataset sqlite:////tmp/loaded.db
"""

import argparse
import asyncio
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import Table, insert

from oauth_server.crypto import SplitToken, hash_secret, new_secret, new_split_token, new_token
from oauth_server.storage.models import JTI_CHANGE, TOKEN_CHANGE
from oauth_server.storage.sql.engine import create_sync_sqlite_engine
from oauth_server.storage.sql.schema import changes, clients, opaque_tokens, revoked_tokens

from .databases import Database

DAY = 86_400
HOUR = 3_600
AUDIENCE = "https://restaurants.bench.test/"
_SCOPES = ("restaurent", "restaurants:read", "restaurants:read restaurants:write")
_BATCH = 50_000
_TABLES = (clients, opaque_tokens, revoked_tokens, changes)
_TOKEN_REVOKED = 0.02
_LONG_LIVED = 0.2

Row = dict[str, Any]
Record = tuple[Any, ...]  # a row's values in _columns order


@dataclass(frozen=True)
class DatasetSize:
    clients: int = 10_000
    tokens: int = 1_000_000
    revoked_jtis: int = 100_000


@dataclass(frozen=True)
class LoadReport:
    database: Database
    rows: dict[str, int]
    seconds: float

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def summary(self) -> str:
        counts = ", ".join(f"{count:,} {table}" for table, count in self.rows.items())
        return (
            f"{self.database.backend}: {counts} in {self.seconds:.1f} s"
            f" ({self.total_rows / self.seconds:,.0f} rows/s, ANALYZE included)"
        )


@dataclass
class _Generator:
    """Builds the rows of every table, in insertion order, counting them as they go."""

    size: DatasetSize
    now: float = field(default_factory=time.time)
    rng: random.Random = field(default_factory=lambda: random.Random(4))
    revocations: list[tuple[int, str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def client_rows(self) -> Iterator[Row]:
        for i in range(self.size.clients):
            created = int(self.now) - self.rng.randrange(365 * DAY)
            scopes = _SCOPES[i % len(_SCOPES)]
            yield self._count(
                clients,
                {
                    "client_id": self.client_id(i),
                    "secret_hash": hash_secret(new_secret()),
                    "name": f"Loaded client {i}",
                    "grant_types": "client_credentials",
                    "scopes": scopes,
                    "default_scopes": scopes.split()[0],
                    "token_format": "opaque" if i % 2 else "jwt",
                    "resources": AUDIENCE if i % 10 == 1 else "",
                    "created_at": created,
                    "updated_at": created,
                },
            )

    def client_id(self, i: int) -> str:
        return f"load-{i:05d}"

    def token_rows(self) -> Iterator[Row]:
        """Issued at an even pace over the last day, so selectors arrive in key order."""
        start, count = self.now - DAY, self.size.tokens
        opaque_clients = range(1, self.size.clients, 2)
        for i in range(count):
            issued = start + DAY * i / count
            token = new_split_token(issued)
            client_id = self.client_id(self.rng.choice(opaque_clients))
            expires_at = int(issued) + self._lifetime()
            revoked_at = None
            if self.rng.random() < _TOKEN_REVOKED:
                revoked_at = self._revocation_time(issued, expires_at)
                self.revocations.append((revoked_at, TOKEN_CHANGE, token.selector.hex()))
            yield self._count(
                opaque_tokens, self._token_row(token, client_id, issued, expires_at, revoked_at)
            )

    def _token_row(
        self, token: SplitToken, client_id: str, issued: float, expires_at: int, revoked: int | None
    ) -> Row:
        return {
            "selector": token.selector,
            "verifier_hash": token.verifier_hash,
            "client_id": client_id,
            "subject": client_id,
            "scope": _SCOPES[self.rng.randrange(len(_SCOPES))],
            "audience": AUDIENCE,
            "issued_at": int(issued),
            "expires_at": expires_at,
            "revoked_at": revoked,
        }

    def revoked_jti_rows(self) -> Iterator[Row]:
        jwt_clients = range(0, self.size.clients, 2)
        for _ in range(self.size.revoked_jtis):
            issued = self.now - self.rng.uniform(0, DAY)
            expires_at = int(issued) + self._lifetime()
            revoked_at = self._revocation_time(issued, expires_at)
            jti = new_token(16)
            self.revocations.append((revoked_at, JTI_CHANGE, jti))
            yield self._count(
                revoked_tokens,
                {
                    "jti": jti,
                    "client_id": self.client_id(self.rng.choice(jwt_clients)),
                    "expires_at": expires_at,
                    "revoked_at": revoked_at,
                },
            )

    def change_rows(self) -> Iterator[Row]:
        """One change-feed entry per revocation above, in time order (ids follow time)."""
        for revoked_at, kind, key in sorted(self.revocations):
            yield self._count(changes, {"kind": kind, "key": key, "created_at": revoked_at})

    def tables(self) -> Iterator[tuple[Table, Iterator[Row]]]:
        """Each table with its rows, in _TABLES order: the change feed comes last, once the
        revocations it announces have been made."""
        row_makers = (self.client_rows, self.token_rows, self.revoked_jti_rows, self.change_rows)
        for table, rows in zip(_TABLES, row_makers, strict=True):
            yield table, rows()

    def _lifetime(self) -> int:
        return DAY if self.rng.random() < _LONG_LIVED else HOUR

    def _revocation_time(self, issued: float, expires_at: int) -> int:
        return int(self.rng.uniform(issued, min(expires_at, self.now)))

    def _count(self, table: Table, row: Row) -> Row:
        self.counts[table.name] = self.counts.get(table.name, 0) + 1
        return row


def _records(rows: Iterable[Row], columns: Sequence[str]) -> Iterator[Record]:
    return (tuple(row[c] for c in columns) for row in rows)


def _batches(
    records: Iterable[tuple[Any, ...]], size: int = _BATCH
) -> Iterator[list[tuple[Any, ...]]]:
    iterator = iter(records)
    while batch := list(islice(iterator, size)):
        yield batch


def _columns(table: Table) -> list[str]:
    """The columns the loader fills: all but an autoincrement key (the database numbers it)."""
    return [c.name for c in table.columns if not (c.primary_key and c.autoincrement is True)]


def _load_sqlite(path: str, generator: _Generator) -> None:
    # The server's own engine set-up: WAL, and transactions begun by SQLAlchemy only (the
    # driver connection itself is in autocommit mode, for what must run outside one).
    engine = create_sync_sqlite_engine(path)
    try:
        with engine.connect() as conn:
            driver = conn.connection.driver_connection
            assert driver is not None
            # For the load only: a setting of this connection, which closes at the end.
            driver.execute("PRAGMA synchronous=OFF")
            with conn.begin():
                for table, rows in generator.tables():
                    columns = _columns(table)
                    statement = str(insert(table).compile(conn, column_keys=columns))
                    for batch in _batches(_records(rows, columns)):
                        conn.exec_driver_sql(statement, batch)
            with conn.begin():
                conn.exec_driver_sql("ANALYZE")
            # Move the load out of the WAL now, or the server's first checkpoint would copy
            # it in the middle of a measurement.
            driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()


async def _load_postgres(dsn: str, generator: _Generator) -> None:
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        async with connection.transaction():
            for table, rows in generator.tables():
                columns = _columns(table)
                await connection.copy_records_to_table(
                    table.name,
                    columns=columns,
                    records=_records(rows, columns),
                )
        for table in _TABLES:
            await connection.execute(f"VACUUM ANALYZE {table.name}")
    finally:
        await connection.close()


def load(database: Database, size: DatasetSize | None = None) -> LoadReport:
    """Fill a migrated, empty database; returns what was written and how long it took."""
    generator = _Generator(size or DatasetSize())
    started = time.perf_counter()
    if database.backend == "sqlite":
        _load_sqlite(database.name, generator)
    else:
        asyncio.run(_load_postgres(database.url, generator))
    return LoadReport(database, dict(generator.counts), time.perf_counter() - started)


def unknown_tokens(count: int) -> list[str]:
    """Well-formed tokens that no database holds, their selectors spread over the data set's
    day: each lookup lands somewhere in a loaded index, and none is ever cached."""
    now, rng = time.time(), random.Random(5)
    return [new_split_token(now - rng.uniform(0, DAY)).value for _ in range(count)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB, migrated")
    defaults = DatasetSize()
    parser.add_argument("--clients", type=int, default=defaults.clients)
    parser.add_argument("--tokens", type=int, default=defaults.tokens)
    parser.add_argument("--revoked-jtis", type=int, default=defaults.revoked_jtis)
    args = parser.parse_args(argv)
    if args.url.startswith("sqlite:///"):
        database = Database("sqlite", args.url, args.url.removeprefix("sqlite:///"))
    else:
        database = Database("postgresql", args.url, args.url)
    report = load(database, DatasetSize(args.clients, args.tokens, args.revoked_jtis))
    print(report.summary())


if __name__ == "__main__":
    main()
