"""Signing keys: encryption at rest, the rotation timeline, the JWKS, the schedule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from oauth_server.clock import FrozenClock
from oauth_server.config import Settings
from oauth_server.oauth.keys import (
    KeyEncryption,
    KeyError_,
    KeyManager,
    KeyRing,
    LoadedKey,
    generate_private_jwk,
    load_secret_key,
)
from oauth_server.storage import SqlStorage, open_storage

TTL, LEEWAY = 3600, 30
RETIRE = TTL + LEEWAY + 60


def test_encryption_round_trip_and_binding() -> None:
    box = KeyEncryption(b"s" * 32)
    blob = box.encrypt(b"private", kid="k1")
    assert b"private" not in blob
    assert box.decrypt(blob, kid="k1") == b"private"
    with pytest.raises(KeyError_):
        box.decrypt(blob, kid="k2")  # the kid is authenticated data
    with pytest.raises(KeyError_):
        KeyEncryption(b"t" * 32).decrypt(blob, kid="k1")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(KeyError_):
        box.decrypt(tampered, kid="k1")


def test_development_secret_is_generated_once(tmp_path: Path) -> None:
    settings = Settings(secret_key_file=tmp_path / "var" / "secret")
    first = load_secret_key(settings)
    assert len(first) >= 48
    assert (tmp_path / "var" / "secret").stat().st_mode & 0o777 == 0o600
    assert load_secret_key(settings) == first


def test_production_needs_a_configured_secret(tmp_path: Path) -> None:
    with pytest.raises(KeyError_, match="OAUTH_SERVER_SECRET_KEY"):
        load_secret_key(Settings(env="production", secret_key_file=tmp_path / "s"))
    assert not (tmp_path / "s").exists()


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


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqlStorage]:
    opened = open_storage(f"sqlite:///{tmp_path}/keys.db")
    await opened.migrate()
    yield opened
    await opened.close()


def manager(storage: SqlStorage, clock: FrozenClock, **options: int) -> KeyManager:
    return KeyManager(
        storage,
        KeyRing(token_ttl=TTL, leeway=LEEWAY),
        encryption=KeyEncryption(b"k" * 32),
        clock=clock,
        rotation_interval=options.get("rotation_interval", 86_400),
        publish_lead=options.get("publish_lead", 600),
    )


async def test_schedule_creates_first_key_then_successors(storage: SqlStorage) -> None:
    clock = FrozenClock(1_000_000)
    keys = manager(storage, clock)
    await keys.ensure_current()
    first = keys.ring.signing_key(clock.now()).kid
    await keys.ensure_current()
    assert len(await storage.keys.list()) == 1  # nothing due yet

    clock.advance(86_400 - 600)  # the successor is due: published a lead before take-over
    await keys.ensure_current()
    records = await storage.keys.list()
    assert len(records) == 2
    assert records[1].activates_at == 1_000_000 + 86_400
    assert keys.ring.signing_key(clock.now()).kid == first
    clock.advance(600)
    assert keys.ring.signing_key(clock.now()).kid == records[1].kid
    # Private keys are stored encrypted, never as JWK JSON.
    assert all(b'"d"' not in record.private_key for record in records)


async def test_instances_racing_for_the_next_key_create_one(storage: SqlStorage) -> None:
    clock = FrozenClock(1_000_000)
    instances = [manager(storage, clock) for _ in range(5)]
    await asyncio.gather(*(keys.ensure_current() for keys in instances))
    assert len(await storage.keys.list()) == 1
    signing = {keys.ring.signing_key(clock.now()).kid for keys in instances}
    assert len(signing) == 1


async def test_rotate_and_remove(storage: SqlStorage) -> None:
    clock = FrozenClock(1_000_000)
    keys = manager(storage, clock)
    await keys.ensure_current()
    old = keys.ring.signing_key(clock.now()).kid
    new = await keys.rotate()
    assert new is not None
    assert keys.ring.signing_key(clock.now()).kid == old  # publish lead first
    assert [row["state"] for row in keys.describe()] == ["active", "pending"]
    immediate = await keys.rotate(immediately=True)
    assert keys.ring.signing_key(clock.now()).kid == immediate
    assert await keys.remove(immediate or "")
    assert keys.ring.verification_key(immediate or "", clock.now()) is None
    assert not await keys.remove(immediate or "")
    # Removing the signing key leaves the server able to sign.
    keys.ring.signing_key(clock.now())


async def test_stored_keys_need_the_same_secret(storage: SqlStorage) -> None:
    clock = FrozenClock()
    await manager(storage, clock).ensure_current()
    other = KeyManager(
        storage,
        KeyRing(token_ttl=TTL, leeway=LEEWAY),
        encryption=KeyEncryption(b"x" * 32),
        clock=clock,
    )
    with pytest.raises(KeyError_, match="cannot decrypt"):
        await other.load()


@pytest.mark.parametrize("alg", ["ES256", "RS256", "Ed25519", "EdDSA"])
async def test_every_algorithm_signs_and_verifies(storage: SqlStorage, alg: str) -> None:
    from oauth_server.oauth.tokens import JwtAccessTokenIssuer, TokenGrant
    from oauth_server.resource.jwt import JwtVerifier
    from tests.fakes import make_client

    clock = FrozenClock()
    keys = KeyManager(
        storage,
        KeyRing(token_ttl=TTL, leeway=LEEWAY),
        encryption=KeyEncryption(b"k" * 32),
        clock=clock,
        alg=alg,  # type: ignore[arg-type]
    )
    await keys.ensure_current()
    issuer = JwtAccessTokenIssuer(keys.ring, issuer="https://as", clock=clock, ttl=TTL)
    grant = TokenGrant(make_client(), "app", ("a",), ("https://rs",))
    token = (await issuer.issue(grant)).access_token
    claims = await JwtVerifier(keys, issuer="https://as", clock=clock).verify(token)
    assert claims.audience == ("https://rs",)
    assert orjson.loads(keys.ring.jwks(clock.now()))["keys"][0]["alg"] == alg
