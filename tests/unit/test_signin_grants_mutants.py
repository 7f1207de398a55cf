"""What the two user grants share (``oauth/grants/signin.py``), piece by piece: the refresh
token rule, the lifetimes, the audience, the records a new refresh token and an issued access
token make, and the two revocations with what they void and record (kills its mutants; see
``make mutate``)."""

from __future__ import annotations

import pytest

from oauth_server.audit import NO_AUDIT
from oauth_server.clock import FrozenClock
from oauth_server.errors import InvalidGrant
from oauth_server.oauth.grants import SignInGrants
from oauth_server.oauth.grants.signin import issues_refresh_token
from oauth_server.oauth.tokens.issue import AccessToken
from oauth_server.storage.models import IssuedToken, RefreshFamily, RefreshTokenRecord
from tests.fakes import MemorySignInStorage
from tests.helpers import token_codec
from tests.signin import (
    ALICE,
    GRANT_NOW,
    PUBLIC_ID,
    USER_GRANTS,
    USER_ID,
    grant_world,
    public_client,
)

NOW = GRANT_NOW


@pytest.mark.parametrize(
    ("scope", "grant_types", "expected"),
    [
        (("restaurants:read",), USER_GRANTS, True),
        ((), USER_GRANTS, True),
        (("openid", "restaurants:read"), USER_GRANTS, False),
        (("openid", "offline_access"), USER_GRANTS, True),
        (("offline_access",), USER_GRANTS, True),
        (("restaurants:read",), frozenset({"authorization_code"}), False),
        (("openid", "offline_access"), frozenset({"authorization_code"}), False),
    ],
)
def test_the_refresh_token_rule(
    scope: tuple[str, ...], grant_types: frozenset[str], expected: bool
) -> None:
    assert issues_refresh_token(public_client(grant_types=grant_types), scope) is expected


def test_the_default_lifetimes() -> None:
    signin = SignInGrants(
        storage=MemorySignInStorage(),  # type: ignore[arg-type]
        clock=FrozenClock(NOW + 0.75),
        voider=None,  # type: ignore[arg-type]
        default_resource="https://api.example",
        codec=token_codec(FrozenClock(NOW)),
    )
    assert (signin.refresh_idle_ttl, signin.refresh_max_ttl, signin.refresh_reuse_grace) == (
        14 * 86_400,
        90 * 86_400,
        0,
    )
    assert signin.audit is NO_AUDIT
    assert signin.now() == NOW
    assert type(signin.now()) is int


@pytest.mark.parametrize(
    ("resource", "audience"),
    [
        ("", ("https://api.example",)),
        ("https://a.example", ("https://a.example",)),
        ("https://a.example https://b.example", ("https://a.example", "https://b.example")),
    ],
)
def test_the_audience_is_the_stored_resource_or_the_default(
    resource: str, audience: tuple[str, ...]
) -> None:
    assert grant_world().signin.audience(resource) == audience


async def test_only_an_active_user_is_returned() -> None:
    world = grant_world()
    assert await world.signin.active_user(USER_ID) == ALICE
    with pytest.raises(InvalidGrant) as caught:
        await world.signin.active_user("nobody")
    assert caught.value.description == "the user of this grant is disabled or no longer exists"


def test_an_issued_access_token_is_recorded_with_its_expiry() -> None:
    access = AccessToken("value", 600, ("a",), token_id="t-1", token_format="opaque")
    recorded = SignInGrants.issued(access, public_client(), NOW)
    assert recorded == IssuedToken("t-1", "opaque", PUBLIC_ID, NOW + 600)


def test_a_new_refresh_token_is_stored_only_as_its_hash() -> None:
    world = grant_world()
    token, record = world.signin.new_refresh_token(
        family_id="f",
        client_id=PUBLIC_ID,
        user_id=USER_ID,
        scope="a b",
        resource="https://a.example",
        now=NOW - 10,
    )
    assert token_codec(FrozenClock(0)).parse("refresh_token", token.value) == (
        token.selector,
        token.verifier_hash,
    )
    assert int.from_bytes(token.selector[:6], "big") == (NOW * 1000 + 750)  # the clock's
    assert record == RefreshTokenRecord(
        selector=token.selector,
        verifier_hash=token.verifier_hash,
        family_id="f",
        client_id=PUBLIC_ID,
        user_id=USER_ID,
        scope="a b",
        resource="https://a.example",
        issued_at=NOW - 10,
        expires_at=NOW - 10 + 3600,
        auth_time=0,
        session_id="",
    )


def test_family_ids_are_fresh_uuids() -> None:
    ids = {SignInGrants.new_family_id() for _ in range(3)}
    assert len(ids) == 3
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


async def test_revoking_a_family_voids_its_tokens_and_says_so() -> None:
    world = grant_world()
    refresh = world.storage.refresh_tokens
    refresh.families["f"] = RefreshFamily("f", PUBLIC_ID, USER_ID, NOW, NOW + 10)
    tokens = [
        IssuedToken("j1", "jwt", PUBLIC_ID, NOW + 1),
        IssuedToken("j2", "jwt", PUBLIC_ID, NOW),
    ]
    refresh.issued["f"] = tokens
    await world.signin.revoke_family("f", client_id="caller", reason="why")
    assert refresh.calls == [("revoke_family", {"family_id": "f", "now": NOW})]
    assert world.voider.calls == [tuple(tokens)]
    assert world.audit.events == [
        (
            "refresh_family_revoked",
            {"client_id": "caller", "family_id": "f", "reason": "why", "count": 2},
        )
    ]


async def test_revoking_what_a_code_issued_voids_it_and_says_so() -> None:
    world = grant_world()
    tokens = [IssuedToken("j1", "jwt", PUBLIC_ID, NOW + 1)]
    world.storage.codes.issued[b"s" * 16] = tokens
    await world.signin.revoke_code_issued(b"s" * 16, client_id="caller", reason="why")
    assert world.storage.codes.calls == [("revoke_issued", {"selector": b"s" * 16, "now": NOW})]
    assert world.voider.calls == [tuple(tokens)]
    assert world.audit.events == [
        (
            "authorization_code_replayed",
            {"client_id": "caller", "token_id": (b"s" * 16).hex(), "reason": "why", "count": 1},
        )
    ]
