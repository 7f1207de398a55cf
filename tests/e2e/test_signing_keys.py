"""Signing keys through the app and the CLI: a key whose stored metadata was changed is refused
with a clear error (never a 500), and rows stored before the binding are rebound."""

from __future__ import annotations

import asyncio
import os

import httpx
import orjson
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import update

from oauth_server.bootstrap import StartupRefused, prepare
from oauth_server.cli import main
from oauth_server.clock import FrozenClock
from oauth_server.config import Settings
from oauth_server.oauth.keys import KEYS_CHANGE, KeyEncryption, generate_private_jwk, key_binding
from oauth_server.services import build_key_manager
from oauth_server.storage import SigningKeyRecord, SqlStorage, open_storage
from oauth_server.storage.sql.schema import signing_keys
from oauth_server.web.api import FastRouter
from tests.helpers import app_services, bearer, eventually, seed_token


async def _tamper(storage: SqlStorage, kid: str, **values: object) -> None:
    async with storage.engine.begin() as conn:
        await conn.execute(update(signing_keys).where(signing_keys.c.kid == kid).values(**values))


def _foreign_public_jwk(kid: str) -> str:
    other = generate_private_jwk("ES256")
    public = {**other.as_dict(private=False), "kid": kid, "use": "sig", "alg": "ES256"}
    return orjson.dumps(public).decode()


async def _jwks_kids(client: httpx.AsyncClient) -> set[str]:
    return {key["kid"] for key in (await client.get("/.well-known/jwks.json")).json()["keys"]}


async def test_a_running_server_refuses_a_key_whose_row_was_changed(
    app: FastRouter, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    services = app_services(app)
    storage = services.storage
    assert isinstance(storage, SqlStorage)
    token = await seed_token(client)
    kid = services.keys.ring.signing_key(clock.now()).kid
    assert (await client.get("/restaurent", headers=bearer(token))).status_code == 200

    # Someone with write access to the table, but not the secret, publishes a key of theirs.
    await _tamper(storage, kid, public_jwk=_foreign_public_jwk(kid))
    await storage.changes.publish(kind=KEYS_CHANGE, key=kid, now=int(clock.now()))

    async def gone() -> bool:
        return kid not in await _jwks_kids(client)

    await eventually(gone, within=5)
    refused = await client.get("/restaurent", headers=bearer(token))
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    issued = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=("admin", "getroot")
    )
    assert issued.status_code == 503  # no usable key signs: retry later, not a 500
    assert issued.json()["error"] == "temporarily_unavailable"
    assert "retry-after" in issued.headers

    # The operator withdraws it; a new key takes over at once in this process.
    assert await services.keys.remove(kid)
    assert (await client.get("/restaurent", headers=bearer(await seed_token(client)))).is_success


async def test_start_up_refuses_a_key_whose_row_was_changed(
    settings: Settings, clock: FrozenClock
) -> None:
    storage = open_storage(settings.database_url)
    try:
        await prepare(settings, storage, clock=clock)
        kid = (await storage.keys.list())[0].kid
        await _tamper(storage, kid, alg="RS256")
        with pytest.raises(StartupRefused, match=rf"cannot decrypt signing key {kid}") as refused:
            await prepare(settings, storage, clock=clock)
        assert "keys remove" in str(refused.value)
    finally:
        await storage.close()


async def test_db_upgrade_rebinds_rows_stored_before_the_binding(settings: Settings) -> None:
    assert settings.secret_key is not None
    secret = settings.secret_key.get_secret_value().encode()
    storage = open_storage(settings.database_url)
    try:
        await storage.migrate()
        key = generate_private_jwk("ES256")
        kid = key.thumbprint()
        public = orjson.dumps(
            {**key.as_dict(private=False), "kid": kid, "use": "sig", "alg": "ES256"}
        ).decode()
        # As the code before the binding stored it: AES-GCM with the kid alone as AAD.
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"oauth-server/signing-keys/v1"
        ).derive(secret)
        nonce = os.urandom(12)
        legacy = nonce + AESGCM(derived).encrypt(
            nonce, orjson.dumps(key.as_dict(private=True)), kid.encode()
        )
        assert await storage.keys.add(
            key=SigningKeyRecord(kid, 1, "ES256", public, legacy, 1_000_000, 1_000_000)
        )
        env = {
            "OAUTH_SERVER_DATABASE_URL": settings.database_url,
            "OAUTH_SERVER_SECRET_KEY": settings.secret_key.get_secret_value(),
        }
        result = await asyncio.to_thread(CliRunner().invoke, main, ["db", "upgrade"], env=env)
        assert result.exit_code == 0, result.output
        stored = (await storage.keys.list())[0]
        assert stored.private_key != legacy
        box = KeyEncryption(secret)
        assert box.decrypt_unbound(stored.private_key, kid=kid) is None
        binding = key_binding(kid=kid, alg="ES256", public_jwk=public)
        assert orjson.loads(box.decrypt(stored.private_key, kid=kid, binding=binding))["d"]
    finally:
        await storage.close()


async def test_a_removed_key_fails_once_the_change_arrives_even_if_verified_meanwhile(
    app: FastRouter, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """The removal is made by another process (the CLI); this instance hears of it on the
    change feed. A token verified between the feed's news and the reload it starts must not
    stay cached as valid: the cache is emptied in the same step the ring loses the key."""
    services = app_services(app)
    await services.sync.stop()  # this test polls the feed itself
    token = await seed_token(client)
    kid = services.keys.ring.signing_key(clock.now()).kid
    assert (await client.get("/restaurent", headers=bearer(token))).status_code == 200

    cli = build_key_manager(services.settings, services.storage, clock)
    await cli.load()
    assert await cli.remove(kid)
    assert await services.sync.poll() >= 1  # the news arrives; the reload starts
    # Verified (and cached) while the reload is still reading the table.
    assert (await client.get("/restaurent", headers=bearer(token))).status_code == 200

    async def withdrawn() -> bool:
        return kid not in await _jwks_kids(client)

    await eventually(withdrawn, within=5)
    refused = await client.get("/restaurent", headers=bearer(token))
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


async def test_the_cli_lists_a_refused_key_and_withdraws_it(
    settings: Settings, clock: FrozenClock
) -> None:
    assert settings.secret_key is not None
    env = {
        "OAUTH_SERVER_DATABASE_URL": settings.database_url,
        "OAUTH_SERVER_SECRET_KEY": settings.secret_key.get_secret_value(),
    }
    storage = open_storage(settings.database_url)
    try:
        await prepare(settings, storage, clock=clock)
        kid = (await storage.keys.list())[0].kid
        await _tamper(storage, kid, public_jwk=_foreign_public_jwk(kid))
    finally:
        await storage.close()
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(main, list(args), env=env)
        return result.exit_code, result.stdout, result.stderr

    code, out, err = await asyncio.to_thread(run, "keys", "list", "--json")
    assert code == 0, err
    assert [(row["kid"], row["state"]) for row in orjson.loads(out)] == [(kid, "refused")]
    assert f"cannot decrypt signing key {kid}" in err
    code, out, err = await asyncio.to_thread(run, "keys", "rotate")
    assert code != 0  # no new key is written while a stored one fails its check
    code, out, err = await asyncio.to_thread(run, "keys", "remove", kid)
    assert code == 0, err
    code, out, err = await asyncio.to_thread(run, "keys", "list", "--json")
    states = {row["kid"]: row["state"] for row in orjson.loads(out)}
    assert states.pop(kid) == "removed"
    assert list(states.values()) == ["active"]
