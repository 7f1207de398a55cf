"""The reload limits on the real key sources: a token naming a kid this process does not know
makes :class:`KeyManager` re-read the table, and :class:`RemoteJwks` re-fetch the issuer's JWKS,
at most once per interval of the injected clock, however many such tokens arrive."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
from joserfc import jwt

from oauth_server.clock import FrozenClock
from oauth_server.errors import InvalidToken
from oauth_server.oauth.keys import KeyEncryption, KeyManager, KeyRing, generate_private_jwk
from oauth_server.oauth.tokens.issue import Authorization, JwtAccessTokenIssuer
from oauth_server.oauth.tokens.verify.jwks import RemoteJwks
from oauth_server.oauth.tokens.verify.jwt import JwtVerifier
from oauth_server.storage import SqlStorage
from tests.fakes import make_client

ISSUER = "https://as.example"
NOW = 1_800_000_000
CLAIMS = {
    "iss": ISSUER,
    "sub": "app",
    "aud": "https://rs.example",
    "exp": NOW + 3600,
    "iat": NOW,
    "jti": "j",
    "client_id": "app",
}


def unknown_kid_token(kid: str) -> str:
    key = generate_private_jwk("ES256")
    return jwt.encode({"typ": "at+jwt", "alg": "ES256", "kid": kid}, CLAIMS, key)


def key_manager(storage: SqlStorage, clock: FrozenClock) -> KeyManager:
    return KeyManager(
        storage,
        KeyRing(token_ttl=3600, leeway=30),
        encryption=KeyEncryption(b"k" * 32),
        clock=clock,
        min_reload_interval=1.0,
    )


def count_table_reads(storage: SqlStorage) -> list[int]:
    reads: list[int] = []
    original = storage.keys.list

    async def counted() -> list:  # type: ignore[type-arg]
        reads.append(1)
        return await original()

    storage.keys.list = counted  # type: ignore[method-assign]
    return reads


async def test_key_manager_reloads_for_unknown_kids_once_per_interval(
    sqlite_storage: SqlStorage,
) -> None:
    clock = FrozenClock(NOW)
    keys = key_manager(sqlite_storage, clock)
    await keys.ensure_current()
    verifier = JwtVerifier(keys, issuer=ISSUER, clock=clock)
    # Another instance rotates: the new key is in the table, not yet in this ring.
    other = key_manager(sqlite_storage, clock)
    await other.load()
    assert await other.rotate(immediately=True) is not None
    grant = Authorization(make_client(), "app", ("a",), ("https://rs.example",))
    issuer = JwtAccessTokenIssuer(other.ring, issuer=ISSUER, clock=clock, ttl=3600)
    rotated = (await issuer.issue(grant)).access_token
    reads = count_table_reads(sqlite_storage)

    # Within the interval after this process's last read: no read at all.
    with pytest.raises(InvalidToken, match="unknown key"):
        await verifier.verify(rotated)
    assert reads == []
    clock.advance(0.99)
    assert not await keys.reload_for_unknown_kid()
    assert reads == []

    clock.advance(0.01)  # the interval has passed: one read, and the new key is found
    assert (await verifier.verify(rotated)).client_id == "app"
    assert len(reads) == 1
    for n in range(50):  # made-up kids in the same interval cost no read
        with pytest.raises(InvalidToken):
            await verifier.verify(unknown_kid_token(f"made-up-{n}"))
    assert len(reads) == 1

    clock.advance(1.0)  # many at once, concurrently: still one read
    results = await asyncio.gather(*(keys.reload_for_unknown_kid() for _ in range(20)))
    assert results.count(True) == 1
    assert len(reads) == 2


def jwks_document(*kids: str) -> bytes:
    keys = []
    for kid in kids:
        key = generate_private_jwk("ES256")
        keys.append({**key.as_dict(private=False), "kid": kid, "alg": "ES256", "use": "sig"})
    return orjson.dumps({"keys": keys})


async def test_remote_jwks_refetches_for_unknown_kids_once_per_ten_seconds() -> None:
    clock = FrozenClock(NOW)
    served = {"body": jwks_document("k1")}
    fetches: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        fetches.append(str(request.url))
        return httpx.Response(200, content=served["body"])

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    jwks = RemoteJwks("https://as.example/jwks", clock=clock, http=http)  # the default: 10 s
    await jwks.start()
    try:
        assert len(fetches) == 1
        assert jwks.kids == ["k1"]
        served["body"] = jwks_document("k1", "k2")  # the issuer rotated
        verifier = JwtVerifier(jwks, issuer=ISSUER, clock=clock)
        for n in range(30):  # unknown kids within 10 s of the last fetch: no fetch
            with pytest.raises(InvalidToken, match="unknown key"):
                await verifier.verify(unknown_kid_token(f"made-up-{n}"))
        clock.advance(9.9)
        assert not await jwks.reload_for_unknown_kid()
        assert len(fetches) == 1
        assert jwks.kids == ["k1"]

        clock.advance(0.1)
        assert await jwks.reload_for_unknown_kid()
        assert len(fetches) == 2
        assert jwks.kids == ["k1", "k2"]
        results = await asyncio.gather(*(jwks.reload_for_unknown_kid() for _ in range(20)))
        assert not any(results)
        assert len(fetches) == 2
    finally:
        await jwks.stop()
