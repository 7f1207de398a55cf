"""The authorization_code and refresh_token grants called directly, on both databases.

Table-driven attack cases (PKCE, codes, refresh tokens); what a replay or a reuse revokes,
and what an otherwise invalid replay leaves alone (OAuth 2.1 §7.5.3)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pytest

from oauth_server.clock import FrozenClock
from oauth_server.errors import InvalidGrant, InvalidRequest, InvalidScope, OAuthError
from oauth_server.oauth.client_auth import AuthenticatedClient
from oauth_server.oauth.grants import AuthorizationCodeGrant, RefreshTokenGrant, SignInGrants
from oauth_server.oauth.grants.pkce import s256
from oauth_server.oauth.grants.signin import issues_refresh_token
from oauth_server.oauth.tokens.issue import OpaqueTokenIssuer, TokenService, TokenSet
from oauth_server.oauth.tokens.verify.revocation import RevokedJtis
from oauth_server.oauth.tokens.voided import IssuedTokenVoider
from oauth_server.storage.models import AuthorizationCode, Client
from oauth_server.storage.sql.storage import SqlStorage
from tests.fakes import MemoryAudit
from tests.helpers import token_codec
from tests.signin import (
    OTHER_ID,
    REDIRECT,
    USER_ID,
    add_world,
    confidential_client,
    public_client,
    seed_code,
)

RESOURCE = "https://api.example"


@dataclass
class World:
    storage: SqlStorage
    clock: FrozenClock
    code: AuthorizationCodeGrant
    refresh: RefreshTokenGrant
    tokens: TokenService
    audit: MemoryAudit

    async def redeem(self, params: Mapping[str, str], client: Client | None = None) -> TokenSet:
        who = AuthenticatedClient(client or public_client(), "none")
        decision = await self.code.validate(client=who, params=params)
        return await self.tokens.issue(decision)

    async def refresh_with(
        self, token: str, client: Client | None = None, **params: str
    ) -> TokenSet:
        who = AuthenticatedClient(client or public_client(), "none")
        decision = await self.refresh.validate(
            client=who, params={"grant_type": "refresh_token", "refresh_token": token, **params}
        )
        return await self.tokens.issue(decision)

    async def access_revoked(self, tokens: TokenSet) -> bool:
        record = await self.storage.tokens.get(selector=bytes.fromhex(tokens.access.token_id))
        assert record is not None
        return record.revoked_at is not None


def build(storage: SqlStorage, *, grace: int = 0, idle: int = 3600, max_ttl: int = 7200) -> World:
    clock = FrozenClock(1_800_000_000.0)
    audit = MemoryAudit()
    signin = SignInGrants(
        storage=storage,
        clock=clock,
        voider=IssuedTokenVoider(revoked=RevokedJtis(clock=clock, max_token_ttl=3600), opaque=None),
        default_resource=RESOURCE,
        codec=token_codec(clock),
        refresh_idle_ttl=idle,
        refresh_max_ttl=max_ttl,
        refresh_reuse_grace=grace,
        audit=audit,
    )
    tokens = TokenService(
        {
            "opaque": OpaqueTokenIssuer(
                storage.tokens, codec=token_codec(clock), clock=clock, ttl=600
            )
        }
    )
    return World(
        storage, clock, AuthorizationCodeGrant(signin), RefreshTokenGrant(signin), tokens, audit
    )


@pytest.fixture
async def world(storage: SqlStorage) -> World:
    await add_world(storage)
    return build(storage)


def exchange(code: str, verifier: str | None, **extra: str) -> dict[str, str]:
    params = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    if verifier is not None:
        params["code_verifier"] = verifier
    params.update(extra)
    return params


def test_rfc7636_appendix_b_vector() -> None:
    assert s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == (
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


async def test_a_code_gives_an_access_token_for_the_user_and_a_refresh_token(world: World) -> None:
    seeded = await seed_code(world.storage, now=world.clock.now())
    tokens = await world.redeem(exchange(seeded.code, seeded.verifier))
    record = await world.storage.tokens.get(selector=bytes.fromhex(tokens.access.token_id))
    assert record is not None
    assert (record.subject, record.scope, record.audience) == (
        USER_ID,
        "restaurants:read",
        RESOURCE,
    )
    assert tokens.refresh_token is not None
    assert tokens.id_token is None
    assert len(tokens.refresh_token) >= 43  # ≥ 256 bits, base64url


@pytest.mark.parametrize(
    ("case", "pkce", "verifier", "error"),
    [
        ("downgrade: a verifier without a stored challenge", False, "v" * 43, InvalidRequest),
        ("challenge stored, no verifier", True, None, InvalidGrant),
        ("wrong verifier", True, "w" * 43, InvalidGrant),
        ("verifier too short", True, "a" * 42, InvalidRequest),
        ("verifier too long", True, "a" * 129, InvalidRequest),
        ("verifier with a character outside the set", True, "a" * 42 + "+", InvalidRequest),
        ("public client without PKCE", False, None, InvalidGrant),
    ],
)
async def test_pkce(
    world: World, case: str, pkce: bool, verifier: str | None, error: type[OAuthError]
) -> None:
    seeded = await seed_code(world.storage, now=world.clock.now(), pkce=pkce)
    with pytest.raises(error):
        await world.redeem(exchange(seeded.code, verifier))


async def test_plain_challenge_method_is_refused(world: World) -> None:
    seeded = await seed_code(world.storage, now=world.clock.now())
    code = AuthorizationCode(
        selector=b"p" * 16,
        verifier_hash=b"",
        client_id="spa",
        redirect_uri=REDIRECT,
        user_id=USER_ID,
        scope="restaurants:read",
        issued_at=0,
        expires_at=0,
        code_challenge=seeded.verifier,
        code_challenge_method="plain",
    )
    with pytest.raises(InvalidGrant):
        AuthorizationCodeGrant._check(code, public_client(), REDIRECT, seeded.verifier)


@pytest.mark.parametrize(
    ("case", "extra", "error"),
    [
        ("another redirect URI", {"redirect_uri": "http://127.0.0.1:9999/other"}, InvalidGrant),
        ("redirect URI left out", {"redirect_uri": ""}, InvalidGrant),
        ("a code that is not one", {"code": "not-a-code"}, InvalidGrant),
        ("code missing", {"code": ""}, InvalidRequest),
    ],
)
async def test_bad_code_requests(
    world: World, case: str, extra: dict[str, str], error: type[OAuthError]
) -> None:
    seeded = await seed_code(world.storage, now=world.clock.now())
    params = {**exchange(seeded.code, seeded.verifier), **extra}
    for name, value in extra.items():
        if value == "":
            del params[name]
    with pytest.raises(error):
        await world.redeem(params)


async def test_a_code_of_another_client_is_invalid_grant(world: World) -> None:
    seeded = await seed_code(world.storage, now=world.clock.now(), client_id=OTHER_ID)
    with pytest.raises(InvalidGrant, match="another client"):
        await world.redeem(exchange(seeded.code, seeded.verifier))


async def test_an_expired_code_is_invalid_grant(world: World) -> None:
    seeded = await seed_code(world.storage, now=world.clock.now(), ttl=60)
    world.clock.advance(61)
    with pytest.raises(InvalidGrant):
        await world.redeem(exchange(seeded.code, seeded.verifier))


async def test_a_disabled_or_deleted_user_gets_nothing(world: World) -> None:
    await world.storage.users.set_disabled(user_id=USER_ID, disabled=True)
    seeded = await seed_code(world.storage, now=world.clock.now())
    with pytest.raises(InvalidGrant, match="disabled"):
        await world.redeem(exchange(seeded.code, seeded.verifier))
    gone = await seed_code(world.storage, now=world.clock.now(), user_id="nobody")
    with pytest.raises(InvalidGrant, match="disabled"):
        await world.redeem(exchange(gone.code, gone.verifier))


async def test_a_replayed_code_revokes_everything_issued_from_it(world: World) -> None:
    seeded = await seed_code(world.storage, now=world.clock.now())
    first = await world.redeem(exchange(seeded.code, seeded.verifier))
    assert first.refresh_token is not None
    rotated = await world.refresh_with(first.refresh_token)
    with pytest.raises(InvalidGrant, match="already used"):
        await world.redeem(exchange(seeded.code, seeded.verifier))
    assert await world.access_revoked(first)
    assert await world.access_revoked(rotated)  # the family's later tokens too
    assert rotated.refresh_token is not None
    with pytest.raises(InvalidGrant):
        await world.refresh_with(rotated.refresh_token)
    assert "authorization_code_replayed" in world.audit.kinds()


@pytest.mark.parametrize(
    ("case", "verifier", "client"),
    [
        ("wrong verifier", "w" * 43, None),
        ("no verifier", None, None),
        ("another client", None, public_client(OTHER_ID)),
        ("wrong redirect URI", "redirect", None),
    ],
)
async def test_an_otherwise_invalid_replay_revokes_nothing(
    world: World, case: str, verifier: str | None, client: Client | None
) -> None:
    seeded = await seed_code(world.storage, now=world.clock.now())
    first = await world.redeem(exchange(seeded.code, seeded.verifier))
    params = exchange(seeded.code, seeded.verifier if client else verifier)
    if verifier == "redirect":
        params.update(code_verifier=seeded.verifier, redirect_uri="http://127.0.0.1:1/x")
    with pytest.raises(InvalidGrant):
        await world.redeem(params, client)
    assert not await world.access_revoked(first)
    assert first.refresh_token is not None
    await world.refresh_with(first.refresh_token)  # the family lives on
    assert "authorization_code_replayed" not in world.audit.kinds()


@pytest.mark.parametrize(
    ("scope", "grant_types", "expected"),
    [
        (("restaurants:read",), {"authorization_code", "refresh_token"}, True),
        (("openid", "restaurants:read"), {"authorization_code", "refresh_token"}, False),
        (("openid", "offline_access"), {"authorization_code", "refresh_token"}, True),
        (("restaurants:read",), {"authorization_code"}, False),
        (("openid", "offline_access"), {"authorization_code"}, False),
    ],
)
def test_the_refresh_token_rule(
    scope: tuple[str, ...], grant_types: set[str], expected: bool
) -> None:
    client = public_client(grant_types=frozenset(grant_types))
    assert issues_refresh_token(client, scope) is expected


async def test_an_openid_request_without_offline_access_gets_no_refresh_token(
    world: World,
) -> None:
    seeded = await seed_code(world.storage, now=world.clock.now(), scope="openid restaurants:read")
    tokens = await world.redeem(exchange(seeded.code, seeded.verifier))
    assert tokens.refresh_token is None


# --- Refresh tokens ----------------------------------------------------------------------------


async def first_pair(world: World, scope: str = "restaurants:read restaurent") -> TokenSet:
    seeded = await seed_code(world.storage, now=world.clock.now(), scope=scope)
    tokens = await world.redeem(exchange(seeded.code, seeded.verifier))
    assert tokens.refresh_token is not None
    return tokens


async def test_rotation_on_every_use(world: World) -> None:
    first = await first_pair(world)
    assert first.refresh_token is not None
    second = await world.refresh_with(first.refresh_token)
    assert second.refresh_token not in (None, first.refresh_token)
    assert second.refresh_token is not None
    third = await world.refresh_with(second.refresh_token)
    assert third.refresh_token is not None


async def test_reuse_of_a_rotated_token_revokes_the_family(world: World) -> None:
    first = await first_pair(world)
    assert first.refresh_token is not None
    second = await world.refresh_with(first.refresh_token)
    with pytest.raises(InvalidGrant, match="already used"):
        await world.refresh_with(first.refresh_token)
    assert await world.access_revoked(first)
    assert await world.access_revoked(second)
    assert second.refresh_token is not None
    with pytest.raises(InvalidGrant):
        await world.refresh_with(second.refresh_token)
    kinds = world.audit.kinds()
    assert "refresh_token_reused" in kinds
    assert "refresh_family_revoked" in kinds


async def test_another_clients_refresh_token_is_refused_and_revokes_nothing(world: World) -> None:
    first = await first_pair(world)
    assert first.refresh_token is not None
    with pytest.raises(InvalidGrant, match="another client"):
        await world.refresh_with(first.refresh_token, public_client(OTHER_ID))
    with pytest.raises(InvalidGrant, match="another client"):
        await world.refresh_with(first.refresh_token, confidential_client())
    assert not await world.access_revoked(first)
    await world.refresh_with(first.refresh_token)


async def test_scope_may_narrow_and_the_family_keeps_its_scope(world: World) -> None:
    first = await first_pair(world)
    assert first.refresh_token is not None
    narrowed = await world.refresh_with(first.refresh_token, scope="restaurent")
    assert narrowed.access.scope == ("restaurent",)
    assert narrowed.refresh_token is not None
    full = await world.refresh_with(narrowed.refresh_token)
    assert set(full.access.scope) == {"restaurants:read", "restaurent"}


@pytest.mark.parametrize("scope", ["restaurants:read restaurants:write", "openid", "email"])
async def test_scope_may_not_widen(world: World, scope: str) -> None:
    first = await first_pair(world)
    assert first.refresh_token is not None
    with pytest.raises(InvalidScope):
        await world.refresh_with(first.refresh_token, scope=scope)
    await world.refresh_with(first.refresh_token)  # nothing was consumed


async def test_idle_expiry(world: World) -> None:
    first = await first_pair(world)
    assert first.refresh_token is not None
    world.clock.advance(3601)
    with pytest.raises(InvalidGrant):
        await world.refresh_with(first.refresh_token)


async def test_absolute_expiry(world: World) -> None:
    tokens = await first_pair(world)
    for _ in range(3):  # each use resets the idle expiry, never the family's
        world.clock.advance(3000)
        assert tokens.refresh_token is not None
        if world.clock.now() - 1_800_000_000 < 7200:
            tokens = await world.refresh_with(tokens.refresh_token)
    assert tokens.refresh_token is not None
    with pytest.raises(InvalidGrant):
        await world.refresh_with(tokens.refresh_token)


async def test_a_disabled_user_cannot_refresh(world: World) -> None:
    first = await first_pair(world)
    await world.storage.users.set_disabled(user_id=USER_ID, disabled=True)
    assert first.refresh_token is not None
    with pytest.raises(InvalidGrant, match="disabled"):
        await world.refresh_with(first.refresh_token)


@pytest.mark.parametrize("value", ["", "x" * 10, "A" * 64])
async def test_malformed_or_unknown_refresh_tokens(world: World, value: str) -> None:
    with pytest.raises((InvalidGrant, InvalidRequest)):
        await world.refresh_with(value)


async def test_grace_lets_one_retry_through_and_revokes_the_unused_successor(
    storage: SqlStorage,
) -> None:
    await add_world(storage)
    world = build(storage, grace=10)
    first = await first_pair(world)
    assert first.refresh_token is not None
    lost = await world.refresh_with(first.refresh_token)  # the response that never arrived
    world.clock.advance(5)
    retry = await world.refresh_with(first.refresh_token)
    assert lost.refresh_token is not None
    assert retry.refresh_token is not None
    with pytest.raises(InvalidGrant):
        await world.refresh_with(lost.refresh_token)
    await world.refresh_with(retry.refresh_token)


async def test_outside_the_grace_window_reuse_revokes(storage: SqlStorage) -> None:
    await add_world(storage)
    world = build(storage, grace=10)
    first = await first_pair(world)
    assert first.refresh_token is not None
    second = await world.refresh_with(first.refresh_token)
    world.clock.advance(11)
    with pytest.raises(InvalidGrant):
        await world.refresh_with(first.refresh_token)
    assert await world.access_revoked(second)
