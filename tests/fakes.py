"""In-memory stand-ins for repositories, for unit tests of the core (not a storage backend)."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Unpack

import orjson

from oauth_server.audit import AuditFields, AuditKind
from oauth_server.crypto import hash_secret
from oauth_server.storage.models import (
    AccessTokenRecord,
    AuditQuery,
    AuditRecord,
    AuthorizationCode,
    Client,
    ClientRevocation,
    CodeRedemption,
    FamilyRevocation,
    IssuedToken,
    RefreshFamily,
    RefreshRotation,
    RefreshTokenRecord,
    User,
)


class MemoryClients:
    def __init__(self, *clients: Client) -> None:
        self.rows = {client.client_id: client for client in clients}
        self.lookups = 0

    async def get(self, *, client_id: str) -> Client | None:
        self.lookups += 1
        return self.rows.get(client_id)

    async def add(self, *, client: Client) -> None:
        self.rows[client.client_id] = client

    async def list(
        self, *, limit: int | None = None, after: str | None = None, search: str | None = None
    ) -> list[Client]:
        keys = [key for key in sorted(self.rows) if after is None or key > after]
        if search:
            wanted = search.lower()
            keys = [k for k in keys if wanted in k.lower() or wanted in self.rows[k].name.lower()]
        return [self.rows[key] for key in keys[:limit]]

    async def delete(self, *, client_id: str, revocation: ClientRevocation) -> bool:
        return self.rows.pop(client_id, None) is not None

    async def set_secret_hash(self, *, client_id: str, secret_hash: str, now: int) -> bool:
        row = self.rows.get(client_id)
        if row is None:
            return False
        self.rows[client_id] = replace(row, secret_hash=secret_hash, updated_at=now)
        return True

    async def update(self, *, client: Client) -> bool:
        row = self.rows.get(client.client_id)
        if row is None:
            return False
        self.rows[client.client_id] = replace(
            client, secret_hash=row.secret_hash, created_at=row.created_at
        )
        return True


class MemoryTokens:
    def __init__(self) -> None:
        self.rows: dict[bytes, AccessTokenRecord] = {}

    async def add(self, *, token: AccessTokenRecord) -> None:
        self.rows[token.selector] = token

    async def get(self, *, selector: bytes) -> AccessTokenRecord | None:
        return self.rows.get(selector)

    async def revoke(self, *, selector: bytes, now: int) -> bool:
        row = self.rows.get(selector)
        if row is None or row.revoked_at is not None:
            return False
        self.rows[selector] = replace(row, revoked_at=now)
        return True

    async def purge_expired(self, *, before: int, limit: int) -> int:
        expired = [key for key, row in self.rows.items() if row.expires_at < before][:limit]
        for key in expired:
            del self.rows[key]
        return len(expired)


def make_client(
    client_id: str = "app",
    secret: str = "s3cret",
    *,
    scopes: tuple[str, ...] = ("restaurent", "restaurants:read", "restaurants:write"),
    default_scopes: tuple[str, ...] = ("restaurent",),
    grant_types: frozenset[str] = frozenset({"client_credentials"}),
) -> Client:
    return Client(
        client_id=client_id,
        secret_hash=hash_secret(secret),
        grant_types=grant_types,
        scopes=frozenset(scopes),
        default_scopes=default_scopes,
    )


class MemoryAuditRepository:
    """The audit table as a dict; ``fail`` makes the next appends raise, before or after they
    took effect (``"before"``: the database was down; ``"after"``: the commit's answer was lost)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], AuditRecord] = {}
        self.appends = 0
        self.fail: list[str] = []

    async def append(self, *, records: Sequence[AuditRecord]) -> None:
        self.appends += 1
        failure = self.fail.pop(0) if self.fail else None
        if failure == "before":
            raise ConnectionError("database down")
        for record in records:
            self.rows.setdefault((record.chain_id, record.seq), record)
        if failure == "after":
            raise ConnectionError("connection lost during commit")

    async def scan(self, *, after: tuple[str, int] | None, limit: int) -> list[AuditRecord]:
        keys = sorted(k for k in self.rows if after is None or k > after)
        return [self.rows[k] for k in keys[:limit]]

    async def recent(self, *, limit: int) -> list[AuditRecord]:
        ordered = sorted(self.rows.values(), key=lambda r: (r.at_ms, r.chain_id, r.seq))
        return ordered[::-1][:limit]

    async def query(self, *, query: AuditQuery, limit: int) -> list[AuditRecord]:
        def matches(record: AuditRecord) -> bool:
            fields = orjson.loads(record.data)
            return (
                (not query.kinds or record.kind in query.kinds)
                and (query.client_id is None or fields.get("client_id") == query.client_id)
                and (query.user_id is None or fields.get("user_id") == query.user_id)
                and (query.since_ms is None or record.at_ms >= query.since_ms)
                and (query.until_ms is None or record.at_ms < query.until_ms)
                and (
                    query.before is None
                    or (record.at_ms, record.chain_id, record.seq) < query.before
                )
            )

        return [record for record in await self.recent(limit=len(self.rows)) if matches(record)][
            :limit
        ]


@dataclass
class MemoryAudit:
    """An ``AuditRecorder`` that keeps what it is told, for assertions."""

    events: list[tuple[AuditKind, AuditFields]] = field(default_factory=list)

    def record(self, kind: AuditKind, /, **fields: Unpack[AuditFields]) -> None:
        self.events.append((kind, fields))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]


class CountingHasher:
    """Instant; records every hash it makes and every hash it verifies against."""

    def __init__(self, *, rehash: bool = False) -> None:
        self.made: list[str] = []
        self.verified: list[str] = []
        self.rehash = rehash

    def hash(self, password: str) -> str:
        made = f"fake${len(self.made)}${password}"
        self.made.append(made)
        return made

    def verify(self, password_hash: str, password: str) -> bool:
        self.verified.append(password_hash)
        return password_hash.split("$", 2)[2] == password

    def needs_rehash(self, password_hash: str) -> bool:
        return self.rehash


# --- the stores of the user grants ------------------------------------------------------------
# Each records its calls (``calls``: method name and keyword arguments, in order), so a test
# can assert exactly what a grant asked the store to do, and follows the protocol's contract in
# the simplest way: one event loop, no transaction needed.


class MemoryUsers:
    def __init__(self, *users: User) -> None:
        self.rows = {user.user_id: user for user in users}
        self.asked: list[str] = []

    async def get(self, *, user_id: str) -> User | None:
        self.asked.append(user_id)
        return self.rows.get(user_id)


class MemoryRefreshTokens:
    """Families, their tokens and the access tokens recorded against them. ``scripted``: the
    answers the next ``rotate`` calls give instead of computing one (after recording the call)."""

    def __init__(self) -> None:
        self.rows: dict[bytes, RefreshTokenRecord] = {}
        self.families: dict[str, RefreshFamily] = {}
        self.issued: dict[str, list[IssuedToken]] = {}
        self.grace_used: set[bytes] = set()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.scripted: list[RefreshRotation | None] = []

    async def create_family(self, *, family: RefreshFamily, token: RefreshTokenRecord) -> None:
        self.calls.append(("create_family", {"family": family, "token": token}))
        self.families[family.family_id] = family
        self.rows[token.selector] = replace(
            token, expires_at=min(token.expires_at, family.expires_at)
        )

    async def get(self, *, selector: bytes) -> RefreshTokenRecord | None:
        self.calls.append(("get", {"selector": selector}))
        return self.rows.get(selector)

    async def get_family(self, *, family_id: str) -> RefreshFamily | None:
        return self.families.get(family_id)

    async def rotate(
        self,
        *,
        selector: bytes,
        verifier_hash: bytes,
        successor: RefreshTokenRecord,
        access_tokens: Sequence[IssuedToken] = (),
        now: int,
        grace: int = 0,
    ) -> RefreshRotation | None:
        self.calls.append(
            (
                "rotate",
                {
                    "selector": selector,
                    "verifier_hash": verifier_hash,
                    "successor": successor,
                    "access_tokens": tuple(access_tokens),
                    "now": now,
                    "grace": grace,
                },
            )
        )
        if self.scripted:
            return self.scripted.pop(0)
        row = self.rows.get(selector)
        if row is None or not hmac.compare_digest(row.verifier_hash, verifier_hash):
            return None
        family = self.families[row.family_id]
        if row.revoked_at is not None or family.revoked_at is not None:
            return RefreshRotation("revoked", row, family)
        if family.expires_at <= now:
            return RefreshRotation("expired", row, family)
        child = replace(
            successor,
            family_id=family.family_id,
            client_id=row.client_id,
            user_id=row.user_id,
            parent=row.selector,
            expires_at=min(successor.expires_at, family.expires_at),
            rotated_at=None,
            revoked_at=None,
        )
        if row.rotated_at is None:
            if row.expires_at <= now:
                return RefreshRotation("expired", row, family)
            self.rows[selector] = replace(row, rotated_at=now)
            self.rows[child.selector] = child
            self.issued.setdefault(family.family_id, []).extend(access_tokens)
            return RefreshRotation("rotated", self.rows[selector], family, successor=child)
        children = [r for r in self.rows.values() if r.parent == selector]
        successor_used = any(c.rotated_at is not None for c in children)
        within_grace = grace > 0 and now - row.rotated_at <= grace
        if within_grace and not successor_used and selector not in self.grace_used:
            self.grace_used.add(selector)
            unused = [c.selector for c in children if c.revoked_at is None]
            for key in unused:
                self.rows[key] = replace(self.rows[key], revoked_at=now)
            self.rows[child.selector] = child
            self.issued.setdefault(family.family_id, []).extend(access_tokens)
            return RefreshRotation(
                "rotated",
                row,
                family,
                successor=child,
                within_grace=True,
                replaced=unused[0] if unused else None,
            )
        return RefreshRotation(
            "reused", row, family, within_grace=within_grace, successor_used=successor_used
        )

    async def revoke_family(self, *, family_id: str, now: int) -> FamilyRevocation:
        self.calls.append(("revoke_family", {"family_id": family_id, "now": now}))
        family = self.families.get(family_id)
        if family is None or family.revoked_at is not None:
            return FamilyRevocation()
        self.families[family_id] = replace(family, revoked_at=now)
        count = 0
        for key, row in list(self.rows.items()):
            if row.family_id == family_id and row.revoked_at is None:
                self.rows[key] = replace(row, revoked_at=now)
                count += 1
        return FamilyRevocation((family_id,), count, tuple(self.issued.get(family_id, ())))


class MemoryCodes:
    """Authorization codes, what was issued from each, and the replay mark."""

    def __init__(self, refresh_tokens: MemoryRefreshTokens) -> None:
        self.rows: dict[bytes, AuthorizationCode] = {}
        self.issued: dict[bytes, list[IssuedToken]] = {}
        self.refresh_tokens = refresh_tokens
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def add(self, *, code: AuthorizationCode) -> None:
        self.rows[code.selector] = code

    async def consume(
        self, *, selector: bytes, verifier_hash: bytes, now: int
    ) -> CodeRedemption | None:
        self.calls.append(
            ("consume", {"selector": selector, "verifier_hash": verifier_hash, "now": now})
        )
        row = self.rows.get(selector)
        if row is None or not hmac.compare_digest(row.verifier_hash, verifier_hash):
            return None
        if row.used_at is None:
            if row.expires_at <= now:
                return None
            self.rows[selector] = replace(row, used_at=now)
            return CodeRedemption("consumed", self.rows[selector])
        self.rows[selector] = replace(row, replayed_at=row.replayed_at or now)
        return CodeRedemption("replayed", self.rows[selector], tuple(self.issued.get(selector, ())))

    async def record_issued(
        self,
        *,
        selector: bytes,
        tokens: Sequence[IssuedToken],
        refresh_family_id: str | None,
        now: int,
    ) -> bool:
        self.calls.append(
            (
                "record_issued",
                {
                    "selector": selector,
                    "tokens": tuple(tokens),
                    "refresh_family_id": refresh_family_id,
                    "now": now,
                },
            )
        )
        self.issued.setdefault(selector, []).extend(tokens)
        if refresh_family_id is not None:
            self.refresh_tokens.issued.setdefault(refresh_family_id, []).extend(tokens)
        row = self.rows.get(selector)
        if row is None:
            return False
        if refresh_family_id is not None:
            self.rows[selector] = row = replace(row, refresh_family_id=refresh_family_id)
        return row.replayed_at is None

    async def revoke_issued(self, *, selector: bytes, now: int) -> tuple[IssuedToken, ...]:
        self.calls.append(("revoke_issued", {"selector": selector, "now": now}))
        row = self.rows.get(selector)
        tokens = list(self.issued.get(selector, ()))
        if row is not None and row.refresh_family_id is not None:
            family = row.refresh_family_id
            tokens += [t for t in self.refresh_tokens.issued.get(family, ()) if t not in tokens]
            await self.refresh_tokens.revoke_family(family_id=family, now=now)
        return tuple(tokens)


class MemoryVoider:
    """An ``IssuedTokenVoider`` that keeps what it was told to void, call by call."""

    def __init__(self) -> None:
        self.calls: list[tuple[IssuedToken, ...]] = []

    def voided(self, tokens: Iterable[IssuedToken]) -> None:
        self.calls.append(tuple(tokens))


class MemorySignInStorage:
    """The stores the user grants (and refresh-token revocation) use."""

    def __init__(self, *users: User) -> None:
        self.users = MemoryUsers(*users)
        self.tokens = MemoryTokens()
        self.refresh_tokens = MemoryRefreshTokens()
        self.codes = MemoryCodes(self.refresh_tokens)
