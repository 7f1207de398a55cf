"""Signing keys: encryption at rest, the rotation timeline, the JWKS, the schedule."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import update

from oauth_server.clock import FrozenClock
from oauth_server.config import Settings
from oauth_server.oauth.keys import (
    KeyEncryption,
    KeyError_,
    KeyManager,
    KeyRing,
    LoadedKey,
    NoSigningKey,
    expired_keys,
    generate_private_jwk,
    key_binding,
)
from oauth_server.services import load_secret_key
from oauth_server.storage import SigningKeyRecord, SqlStorage
from oauth_server.storage.sql.schema import signing_keys
from tests.fakes import MemoryAudit
from tests.helpers import eventually

TTL, LEEWAY = 3600, 30
RETIRE = TTL + LEEWAY + 60


def test_encryption_round_trip_and_binding() -> None:
    box = KeyEncryption(b"s" * 32)
    bound = key_binding(kid="k1", alg="ES256", public_jwk='{"kty":"EC","x":"1"}')
    blob = box.encrypt(b"private", binding=bound)
    assert b"private" not in blob
    assert box.decrypt(blob, kid="k1", binding=bound) == b"private"
    # The same JWK spelled differently binds the same; any change of what the row says fails.
    assert bound == key_binding(kid="k1", alg="ES256", public_jwk='{ "x": "1", "kty": "EC" }')
    for changed in (
        key_binding(kid="k2", alg="ES256", public_jwk='{"kty":"EC","x":"1"}'),
        key_binding(kid="k1", alg="RS256", public_jwk='{"kty":"EC","x":"1"}'),
        key_binding(kid="k1", alg="ES256", public_jwk='{"kty":"EC","x":"2"}'),
    ):
        with pytest.raises(KeyError_, match="cannot decrypt signing key k1"):
            box.decrypt(blob, kid="k1", binding=changed)
    with pytest.raises(KeyError_):
        KeyEncryption(b"t" * 32).decrypt(blob, kid="k1", binding=bound)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(KeyError_):
        box.decrypt(tampered, kid="k1", binding=bound)
    assert box.decrypt_unbound(blob, kid="k1") is None  # a bound row is never read unbound


def test_development_secret_is_generated_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(secret_key_file=tmp_path / "var" / "secret")
    first = load_secret_key(settings)
    assert len(first) >= 48
    assert (tmp_path / "var" / "secret").stat().st_mode & 0o777 == 0o600
    # README: development "generates one in var/secret_key and says so" (once).
    said = [r.getMessage() for r in caplog.records if "generated a development secret" in r.msg]
    assert said == [
        f"generated a development secret key in {tmp_path / 'var' / 'secret'}; "
        "set OAUTH_SERVER_SECRET_KEY in production"
    ]
    assert load_secret_key(settings) == first
    assert len([r for r in caplog.records if "generated a development secret" in r.msg]) == 1


def test_production_needs_a_configured_secret(tmp_path: Path) -> None:
    with pytest.raises(KeyError_, match="OAUTH_SERVER_SECRET_KEY"):
        load_secret_key(Settings(env="production", secret_key_file=tmp_path / "s"))
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("content", "configured", "refusal"),
    [
        ("a-mounted-production-secret-0123456789abcdef", True, None),
        (None, True, "does not exist"),
        ("too-short", True, "at least 32 characters"),
        # The default file, which development generates, is never a production secret.
        ("a-left-over-development-secret-0123456789abcdef", False, "must be set in production"),
    ],
)
def test_production_reads_only_a_configured_secret_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: str | None,
    configured: bool,
    refusal: str | None,
) -> None:
    monkeypatch.chdir(tmp_path)
    path = Path("var/secret_key")  # the default location
    if content is not None:
        path.parent.mkdir()
        path.write_text(content + "\n")
    settings = (
        Settings(env="production", secret_key_file=path)
        if configured
        else Settings(env="production")
    )
    if refusal is None:
        assert content is not None
        assert load_secret_key(settings) == content.encode()
        return
    with pytest.raises(KeyError_, match=refusal):
        load_secret_key(settings)
    assert path.exists() is (content is not None)  # nothing generated


def loaded(kid: str, generation: int, activates_at: int) -> LoadedKey:
    key = generate_private_jwk("ES256")
    public = {**key.as_dict(private=False), "kid": kid, "use": "sig", "alg": "ES256"}
    return LoadedKey(kid, "ES256", generation, activates_at, key, public)


def jwks_kids(ring: KeyRing, now: float) -> list[str]:
    return [key["kid"] for key in orjson.loads(ring.jwks(now))["keys"]]


def test_timeline_publish_sign_retire_expire() -> None:
    ring = KeyRing(token_ttl=TTL, leeway=LEEWAY)
    ring.replace([loaded("old", 1, 1000), loaded("new", 2, 5000)])
    # Before the new key activates it is published but does not sign.
    assert ring.signing_key(4999).kid == "old"
    assert jwks_kids(ring, 4999) == ["old", "new"]
    assert ring.verification_key("new", 4000) is None  # not active yet (beyond leeway)
    # It takes over at activates_at; the old key keeps verifying its tokens.
    assert ring.signing_key(5000).kid == "new"
    assert ring.verification_key("old", 5000 + TTL) is not None
    assert jwks_kids(ring, 5000 + TTL) == ["old", "new"]
    # Once every token the old key signed has expired, it leaves the JWKS.
    assert ring.verification_key("old", 5000 + RETIRE) is None
    assert jwks_kids(ring, 5000 + RETIRE) == ["new"]


def test_no_active_key_is_an_error() -> None:
    ring = KeyRing(token_ttl=TTL, leeway=LEEWAY)
    with pytest.raises(KeyError_):
        ring.signing_key(0)
    ring.replace([loaded("future", 1, 100)])
    with pytest.raises(KeyError_):
        ring.signing_key(50)


def test_jwks_has_public_members_only() -> None:
    ring = KeyRing(token_ttl=TTL, leeway=LEEWAY)
    ring.replace([loaded("a", 1, 0), loaded("b", 2, 10)])
    for key in orjson.loads(ring.jwks(5))["keys"]:
        assert "d" not in key
        assert key["kty"] == "EC"
        assert (key["use"], key["alg"]) == ("sig", "ES256")


def manager(storage: SqlStorage, clock: FrozenClock, **options: int) -> KeyManager:
    return KeyManager(
        storage,
        KeyRing(token_ttl=TTL, leeway=LEEWAY),
        encryption=KeyEncryption(b"k" * 32),
        clock=clock,
        rotation_interval=options.get("rotation_interval", 86_400),
        publish_lead=options.get("publish_lead", 600),
    )


async def test_schedule_creates_first_key_then_successors(sqlite_storage: SqlStorage) -> None:
    clock = FrozenClock(1_000_000)
    keys = manager(sqlite_storage, clock)
    await keys.ensure_current()
    first = keys.ring.signing_key(clock.now()).kid
    await keys.ensure_current()
    assert len(await sqlite_storage.keys.list()) == 1  # nothing due yet

    clock.advance(86_400 - 600)  # the successor is due: published a lead before take-over
    await keys.ensure_current()
    records = await sqlite_storage.keys.list()
    assert len(records) == 2
    assert records[1].activates_at == 1_000_000 + 86_400
    assert keys.ring.signing_key(clock.now()).kid == first
    clock.advance(600)
    assert keys.ring.signing_key(clock.now()).kid == records[1].kid
    # Private keys are stored encrypted, never as JWK JSON.
    assert all(b'"d"' not in record.private_key for record in records)


async def test_schedule_sleeps_until_the_next_key_is_due(sqlite_storage: SqlStorage) -> None:
    clock = FrozenClock(1_000_000)
    keys = manager(sqlite_storage, clock, rotation_interval=3600, publish_lead=600)
    await keys.ensure_current()
    assert keys.seconds_to_next_check(poll=60) == 60  # nothing due within a poll
    clock.advance(3600 - 600 - 5)
    assert keys.seconds_to_next_check(poll=60) == 5  # not the rest of the poll
    clock.advance(5)
    assert keys.seconds_to_next_check(poll=60) == 1.0  # overdue (a failed check): retried soon
    await keys.ensure_current()
    assert keys.seconds_to_next_check(poll=60) == 60
    off = manager(sqlite_storage, clock, rotation_interval=0)
    await off.load()
    assert off.seconds_to_next_check(poll=60) == 60


async def test_background_schedule_creates_the_key_when_due_not_a_poll_later(
    sqlite_storage: SqlStorage,
) -> None:
    clock = FrozenClock(1_000_000)
    keys = manager(sqlite_storage, clock, rotation_interval=3600, publish_lead=600)
    await keys.ensure_current()
    clock.advance(3600 - 600 - 0.2)
    await keys.start(check_every=3600.0)  # a poll far longer than the test
    try:
        clock.advance(0.2)  # the successor is due now
        await eventually(lambda: _count_keys(sqlite_storage, 2), within=5)
    finally:
        await keys.stop()
    records = await sqlite_storage.keys.list()
    # Created at its due time, so it takes over exactly one rotation interval after the first.
    assert records[1].activates_at == records[0].activates_at + 3600


async def _count_keys(storage: SqlStorage, expected: int) -> bool:
    return len(await storage.keys.list()) == expected


async def test_managers_sharing_one_database_create_one_first_key(
    sqlite_storage: SqlStorage,
) -> None:
    """Five key managers in one event loop on SQLite (the cross-process race on PostgreSQL is
    tests/e2e/test_multi_instance.py::test_processes_rotating_at_once_create_one_key)."""
    clock = FrozenClock(1_000_000)
    instances = [manager(sqlite_storage, clock) for _ in range(5)]
    await asyncio.gather(*(keys.ensure_current() for keys in instances))
    assert len(await sqlite_storage.keys.list()) == 1
    signing = {keys.ring.signing_key(clock.now()).kid for keys in instances}
    assert len(signing) == 1


async def test_rotate_and_remove(sqlite_storage: SqlStorage) -> None:
    clock = FrozenClock(1_000_000)
    keys = manager(sqlite_storage, clock)
    await keys.ensure_current()
    old = keys.ring.signing_key(clock.now()).kid
    new = await keys.rotate()
    assert new is not None
    assert keys.ring.signing_key(clock.now()).kid == old  # publish lead first
    assert [row["state"] for row in keys.describe()] == ["active", "pending"]
    immediate = await keys.rotate(immediately=True)
    assert immediate is not None
    assert keys.ring.signing_key(clock.now()).kid == immediate
    assert await keys.remove(immediate)
    assert keys.ring.verification_key(immediate, clock.now()) is None
    assert not await keys.remove(immediate)
    # Removing the signing key leaves the server able to sign.
    keys.ring.signing_key(clock.now())


async def test_remove_withdraws_the_key_at_once_in_the_removing_process(
    sqlite_storage: SqlStorage,
) -> None:
    from oauth_server.errors import InvalidToken
    from oauth_server.oauth.tokens.issue import Authorization, JwtAccessTokenIssuer
    from oauth_server.oauth.tokens.verify.jwt import JwtVerifier
    from tests.fakes import make_client

    clock = FrozenClock(1_000_000)
    keys = manager(sqlite_storage, clock)
    await keys.ensure_current()
    verifier = JwtVerifier(keys, issuer="https://as", clock=clock)
    keys.on_withdrawn(verifier.clear_cache)  # as build_services wires it
    issuer = JwtAccessTokenIssuer(keys.ring, issuer="https://as", clock=clock, ttl=TTL)
    grant = Authorization(make_client(), "app", ("a",), ("https://rs",))
    token = (await issuer.issue(grant)).access_token
    kid = keys.ring.signing_key(clock.now()).kid
    await verifier.verify(token)  # cached as valid
    assert await keys.remove(kid)
    # No poll, no wait: out of the JWKS, and its tokens refused, when remove() returns.
    assert kid not in jwks_kids(keys.ring, clock.now())
    with pytest.raises(InvalidToken, match="unknown key"):
        await verifier.verify(token)
    assert keys.ring.signing_key(clock.now()).kid != kid


async def test_stored_keys_need_the_same_secret(sqlite_storage: SqlStorage) -> None:
    clock = FrozenClock()
    await manager(sqlite_storage, clock).ensure_current()
    other = KeyManager(
        sqlite_storage,
        KeyRing(token_ttl=TTL, leeway=LEEWAY),
        encryption=KeyEncryption(b"x" * 32),
        clock=clock,
    )
    with pytest.raises(KeyError_, match="cannot decrypt"):
        await other.load()


async def _tamper(storage: SqlStorage, kid: str, **values: object) -> None:
    async with storage.engine.begin() as conn:
        await conn.execute(update(signing_keys).where(signing_keys.c.kid == kid).values(**values))


def _foreign_public_jwk(kid: str, alg: str = "ES256") -> str:
    other = generate_private_jwk(alg)  # type: ignore[arg-type]
    return orjson.dumps(
        {**other.as_dict(private=False), "kid": kid, "use": "sig", "alg": alg}
    ).decode()


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda kid: {"alg": "RS256"}, id="alg"),
        pytest.param(lambda kid: {"public_jwk": _foreign_public_jwk(kid)}, id="public-jwk"),
    ],
)
async def test_changed_key_metadata_is_refused(
    sqlite_storage: SqlStorage, change: Callable[[str], dict[str, object]]
) -> None:
    clock = FrozenClock(1_000_000)
    keys = manager(sqlite_storage, clock)
    await keys.ensure_current()
    kid = keys.ring.signing_key(clock.now()).kid
    await _tamper(sqlite_storage, kid, **change(kid))
    other = manager(sqlite_storage, clock)  # a process loading the table after the change
    with pytest.raises(KeyError_, match=f"cannot decrypt signing key {kid}.*public_jwk"):
        await other.load()
    assert other.verification_key(kid, clock.now()) is None
    assert jwks_kids(other.ring, clock.now()) == []
    assert [row["state"] for row in other.describe()] == ["refused"]
    with pytest.raises(NoSigningKey):
        other.ring.signing_key(clock.now())
    assert NoSigningKey.status_code == 503  # a token request is told to retry, not a 500
    # The request path's reload reports no failure of its own: the token is simply unknown.
    clock.advance(5)
    assert await other.reload_for_unknown_kid()


def _legacy_row(box_secret: bytes, kid: str, private: bytes) -> bytes:
    """The private key as the code before the binding stored it: the kid alone as AAD."""
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"oauth-server/signing-keys/v1"
    ).derive(box_secret)
    nonce = os.urandom(12)
    return nonce + AESGCM(derived).encrypt(nonce, private, kid.encode())


async def _add_legacy_key(storage: SqlStorage, *, public_jwk: str | None = None) -> str:
    key = generate_private_jwk("ES256")
    kid = key.thumbprint()
    own = {**key.as_dict(private=False), "kid": kid, "use": "sig", "alg": "ES256"}
    public = public_jwk or orjson.dumps(own).decode()
    private = orjson.dumps(key.as_dict(private=True))
    blob = _legacy_row(b"k" * 32, kid, private)
    record = SigningKeyRecord(kid, 1, "ES256", public, blob, 1_000_000, 1_000_000)
    assert await storage.keys.add(key=record)
    return kid


async def test_a_row_written_before_the_binding_is_rebound_on_load(
    sqlite_storage: SqlStorage,
) -> None:
    clock = FrozenClock(1_000_000)
    kid = await _add_legacy_key(sqlite_storage)
    legacy = (await sqlite_storage.keys.list())[0].private_key
    keys = manager(sqlite_storage, clock)
    await keys.load()  # what `serve` and `db upgrade`'s start-up do with the secret at hand
    assert keys.ring.signing_key(clock.now()).kid == kid
    stored = (await sqlite_storage.keys.list())[0]
    assert stored.private_key != legacy
    box = KeyEncryption(b"k" * 32)
    assert box.decrypt_unbound(stored.private_key, kid=kid) is None
    binding = key_binding(kid=kid, alg="ES256", public_jwk=stored.public_jwk)
    assert box.decrypt(stored.private_key, kid=kid, binding=binding)
    # From now on the row is bound like any other: changing its alg refuses it.
    await _tamper(sqlite_storage, kid, alg="RS256")
    with pytest.raises(KeyError_, match=f"cannot decrypt signing key {kid}"):
        await manager(sqlite_storage, clock).load()


async def test_a_row_written_before_the_binding_is_checked_against_its_key(
    sqlite_storage: SqlStorage,
) -> None:
    clock = FrozenClock(1_000_000)
    kid = await _add_legacy_key(sqlite_storage, public_jwk=_foreign_public_jwk("placeholder"))
    await _tamper(sqlite_storage, kid, public_jwk=_foreign_public_jwk(kid))
    legacy = (await sqlite_storage.keys.list())[0].private_key
    keys = manager(sqlite_storage, clock)
    with pytest.raises(KeyError_, match="not the key's own"):
        await keys.load()
    assert jwks_kids(keys.ring, clock.now()) == []
    assert (await sqlite_storage.keys.list())[0].private_key == legacy  # not rebound


async def test_a_removed_key_cannot_be_restored_by_clearing_its_removal(
    sqlite_storage: SqlStorage,
) -> None:
    clock = FrozenClock(1_000_000)
    keys = manager(sqlite_storage, clock)
    await keys.ensure_current()
    kid = keys.ring.signing_key(clock.now()).kid
    assert await keys.remove(kid)
    removed = next(r for r in await sqlite_storage.keys.list() if r.kid == kid)
    assert removed.private_key == b""  # erased with the removal
    await _tamper(sqlite_storage, kid, removed_at=None)
    other = manager(sqlite_storage, clock)
    with pytest.raises(KeyError_, match=f"signing key {kid} was removed"):
        await other.load()
    assert other.verification_key(kid, clock.now()) is None
    assert kid not in jwks_kids(other.ring, clock.now())


@pytest.mark.parametrize("alg", ["ES256", "RS256", "Ed25519", "EdDSA"])
async def test_every_algorithm_signs_and_verifies(sqlite_storage: SqlStorage, alg: str) -> None:
    from oauth_server.oauth.tokens.issue import Authorization, JwtAccessTokenIssuer
    from oauth_server.oauth.tokens.verify.jwt import JwtVerifier
    from tests.fakes import make_client

    clock = FrozenClock()
    keys = KeyManager(
        sqlite_storage,
        KeyRing(token_ttl=TTL, leeway=LEEWAY),
        encryption=KeyEncryption(b"k" * 32),
        clock=clock,
        alg=alg,  # type: ignore[arg-type]
    )
    await keys.ensure_current()
    issuer = JwtAccessTokenIssuer(keys.ring, issuer="https://as", clock=clock, ttl=TTL)
    grant = Authorization(make_client(), "app", ("a",), ("https://rs",))
    token = (await issuer.issue(grant)).access_token
    claims = await JwtVerifier(keys, issuer="https://as", clock=clock).verify(token)
    assert claims.audience == ("https://rs",)
    assert orjson.loads(keys.ring.jwks(clock.now()))["keys"][0]["alg"] == alg


def record(
    kid: str, generation: int, activates_at: int, removed_at: int | None = None
) -> SigningKeyRecord:
    return SigningKeyRecord(kid, generation, "ES256", "{}", b"", 0, activates_at, removed_at)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (5000 + RETIRE - 1, []),  # "a" still verifies tokens it signed
        (5000 + RETIRE + 99, []),  # its window has ended, but not the margin after it
        (5000 + RETIRE + 100, ["a"]),
        (9000 + RETIRE + 100, ["a", "b"]),  # "c" is the newest: it stays, whatever the time
        (10**9, ["a", "b"]),
    ],
)
def test_expired_keys_follow_the_ring_timeline(now: int, expected: list[str]) -> None:
    records = [record("a", 1, 1000), record("b", 2, 5000), record("c", 3, 9000)]
    assert expired_keys(records, now=now, retire_after=RETIRE, margin=100) == expected
    ring = KeyRing(token_ttl=TTL, leeway=LEEWAY)
    ring.replace([loaded(r.kid, r.generation, r.activates_at) for r in records])
    for kid in expected:  # what the purge deletes, the ring had already stopped trusting
        assert ring.verification_key(kid, now - 100) is None


def test_expired_keys_removed_and_pending() -> None:
    records = [
        record("a", 1, 1000),
        record("gone", 2, 2000, removed_at=3000),
        record("b", 3, 4000),
        record("next", 4, 8000),  # pending: the newest, never deleted
    ]
    # Removing "gone" makes "b" the successor of "a": "a" verifies until 4000 + RETIRE.
    assert expired_keys(records, now=3000 + RETIRE + 10, retire_after=RETIRE, margin=10) == ["gone"]
    assert expired_keys(records, now=4000 + RETIRE + 10, retire_after=RETIRE, margin=10) == [
        "a",
        "gone",
    ]
    only_removed = [record("x", 1, 0, removed_at=10)]
    assert expired_keys(only_removed, now=10**9, retire_after=RETIRE, margin=0) == []
    assert expired_keys([], now=0, retire_after=RETIRE, margin=0) == []


async def test_purge_deletes_expired_keys_and_announces_it(sqlite_storage: SqlStorage) -> None:
    clock = FrozenClock(1_000_000)
    audit = MemoryAudit()
    keys = KeyManager(
        sqlite_storage,
        KeyRing(token_ttl=TTL, leeway=LEEWAY),
        encryption=KeyEncryption(b"k" * 32),
        clock=clock,
        audit=audit,
    )
    await keys.ensure_current()
    first = keys.ring.signing_key(clock.now()).kid
    second = await keys.rotate(immediately=True)
    assert await keys.purge_expired(margin=0) == []
    clock.advance(RETIRE)
    before = await sqlite_storage.changes.last_id()
    assert await keys.purge_expired(margin=0) == [first]
    assert [k.kid for k in await sqlite_storage.keys.list()] == [second]
    assert [c.key for c in await sqlite_storage.changes.read(after=before, limit=10)] == [first]
    assert [row["kid"] for row in keys.describe()] == [second]
    assert ("signing_key_purged", {"kid": first}) in audit.events
    clock.advance(10 * RETIRE)
    assert await keys.purge_expired(margin=0) == []  # the newest stays
    assert keys.ring.signing_key(clock.now()).kid == second


async def test_jtis_are_unique_within_and_across_issuers(sqlite_storage: SqlStorage) -> None:
    """Two issuer objects stand for two processes: each draws its jti prefix at random."""
    from oauth_server.oauth.tokens.issue import Authorization, JwtAccessTokenIssuer
    from tests.fakes import make_client

    clock = FrozenClock()
    keys = manager(sqlite_storage, clock)
    await keys.ensure_current()
    grant = Authorization(make_client(), "app", ("a",), ("https://rs",))
    issuers = [
        JwtAccessTokenIssuer(keys.ring, issuer="https://as", clock=clock, ttl=TTL) for _ in range(2)
    ]
    jtis = [(await issuer.issue(grant)).token_id for issuer in issuers for _ in range(500)]
    assert len(set(jtis)) == 1000


async def test_each_process_parses_the_keys_once(
    sqlite_storage: SqlStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README: "Each process parses the keys once" — not per token, not per reload."""
    from joserfc import jwk

    from oauth_server.oauth.tokens.issue import Authorization, JwtAccessTokenIssuer
    from oauth_server.oauth.tokens.verify.jwt import JwtVerifier
    from tests.fakes import make_client

    clock = FrozenClock(1_000_000)
    keys = manager(sqlite_storage, clock)
    await keys.ensure_current()
    await keys.rotate()  # two keys in the ring
    parses: list[object] = []
    import_key = jwk.import_key

    def counting(*args: Any, **kwargs: Any) -> Any:
        parses.append(args)
        return import_key(*args, **kwargs)

    monkeypatch.setattr(jwk, "import_key", counting)
    issuer = JwtAccessTokenIssuer(keys.ring, issuer="https://as", clock=clock, ttl=TTL)
    grant = Authorization(make_client(), "app", ("a",), ("https://rs",))
    for _ in range(20):
        token = (await issuer.issue(grant)).access_token
        await JwtVerifier(keys, issuer="https://as", clock=clock).verify(token)
    await keys.load()  # what a change-feed notice does
    await keys.load()
    assert parses == []
