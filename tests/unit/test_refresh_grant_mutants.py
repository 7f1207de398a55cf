"""The refresh_token grant decided case by case on in-memory stores: the decision, the
rotation it asks for, every outcome of that rotation, scope narrowing, and what a reuse
revokes — each refusal with its exact message (kills the mutants of
``oauth/grants/refresh_token.py``; see ``make mutate``). The same grant on SQLite and
PostgreSQL: ``test_user_grants.py``."""

from __future__ import annotations

from dataclasses import replace

import pytest

from oauth_server.clock import FrozenClock
from oauth_server.crypto import new_split_token
from oauth_server.errors import InvalidGrant, InvalidRequest, InvalidScope, OAuthError
from oauth_server.oauth.client_auth import AuthenticatedClient
from oauth_server.oauth.tokens.issue import Authorization, TokenSet, UserContext
from oauth_server.storage.models import (
    Client,
    IssuedToken,
    RefreshRotation,
    RefreshTokenRecord,
    User,
)
from tests.helpers import token_codec
from tests.signin import (
    ALICE,
    GRANT_NOW,
    GRANT_RESOURCE,
    OTHER_ID,
    PUBLIC_ID,
    USER_ID,
    GrantWorld,
    confidential_client,
    grant_world,
    public_client,
)

NOW = GRANT_NOW


def issued_of(tokens: TokenSet, at: int = NOW) -> IssuedToken:
    return IssuedToken(tokens.access.token_id, "opaque", PUBLIC_ID, at + 600)


async def refused(world: GrantWorld, token: str, **params: str) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        await world.refresh_with(token, None, **params)
    return caught.value


async def test_a_refresh_is_decided_from_the_stored_token_and_rotates_it() -> None:
    world = grant_world(grace=5)
    value, record = world.put_refresh(
        resource="https://a.example https://b.example", auth_time=NOW - 100, session_id="sid-1"
    )
    decision = await world.validate_refresh(value)
    assert decision == Authorization(
        client=public_client(),
        subject=USER_ID,
        scope=("restaurants:read", "restaurent"),
        audience=("https://a.example", "https://b.example"),
        user=UserContext(user_id=USER_ID, auth_time=NOW - 100, session_id="sid-1", user=ALICE),
    )
    assert world.storage.refresh_tokens.calls == [("get", {"selector": record.selector})]
    assert world.storage.users.asked == [USER_ID]

    tokens = await world.tokens.issue(decision)
    assert tokens.refresh_token is not None
    parsed = token_codec(FrozenClock(0)).parse("refresh_token", tokens.refresh_token)
    assert parsed is not None
    assert world.storage.refresh_tokens.calls[1:] == [
        (
            "rotate",
            {
                "selector": record.selector,
                "verifier_hash": record.verifier_hash,
                "successor": RefreshTokenRecord(
                    selector=parsed[0],
                    verifier_hash=parsed[1],
                    family_id="family-1",
                    client_id=PUBLIC_ID,
                    user_id=USER_ID,
                    scope="restaurants:read restaurent",
                    resource="https://a.example https://b.example",
                    issued_at=NOW,
                    expires_at=NOW + 3600,
                    auth_time=NOW - 100,
                    session_id="sid-1",
                ),
                "access_tokens": (issued_of(tokens),),
                "now": NOW,
                "grace": 5,
            },
        )
    ]
    assert world.storage.refresh_tokens.rows[record.selector].rotated_at == NOW
    assert world.audit.events == []
    assert world.voider.calls == []


async def test_a_token_without_resource_or_auth_time() -> None:
    world = grant_world()
    value, _ = world.put_refresh()
    decision = await world.validate_refresh(value)
    assert decision.audience == (GRANT_RESOURCE,)
    # A token that predates the stored auth time gets no ID token: no user in the context.
    assert decision.user == UserContext(user_id=USER_ID)


async def test_the_refresh_token_parameter_is_required() -> None:
    world = grant_world()
    with pytest.raises(InvalidRequest) as caught:
        await world.refresh.validate(
            client=AuthenticatedClient(public_client(), "none"),
            params={"grant_type": "refresh_token", "REFRESH_TOKEN": "x"},
        )
    assert caught.value.description == "the refresh_token parameter is required"


@pytest.mark.parametrize(
    "case",
    [
        "not a token",
        "unknown",
        "right selector, another secret",
        "truncated",
        "another token's secret",
    ],
)
async def test_a_token_that_is_not_ours_is_refused_like_an_unknown_one(case: str) -> None:
    world = grant_world()
    value, record = world.put_refresh()
    second, _ = world.put_refresh(family_id="family-2")
    other = new_split_token(NOW).value
    presented = {
        "not a token": "not-a-token",
        "unknown": other,
        "right selector, another secret": value[:16] + other[16:],
        "truncated": value[:-1],
        "another token's secret": value[:16] + second[16:],
    }[case]
    error = await refused(world, presented)
    assert (type(error), error.description) == (InvalidGrant, "invalid refresh token")
    assert [n for n, _ in world.storage.refresh_tokens.calls if n != "get"] == []
    assert world.storage.refresh_tokens.rows[record.selector].rotated_at is None


@pytest.mark.parametrize("client", [public_client(OTHER_ID), confidential_client()])
async def test_another_clients_token_is_refused_and_revokes_nothing(client: Client) -> None:
    world = grant_world()
    value, _record = world.put_refresh()
    with pytest.raises(InvalidGrant) as caught:
        await world.refresh_with(value, client)
    assert caught.value.description == "refresh token was issued to another client"
    assert [n for n, _ in world.storage.refresh_tokens.calls] == ["get"]
    assert world.storage.users.asked == []
    assert world.audit.events == []


@pytest.mark.parametrize(
    ("requested", "scope"),
    [
        ("restaurent", ("restaurent",)),
        ("restaurent restaurants:read", ("restaurent", "restaurants:read")),
        ("restaurants:read  restaurent", ("restaurants:read", "restaurent")),
    ],
)
async def test_scope_may_narrow_or_stay_and_the_successor_keeps_the_family_scope(
    requested: str, scope: tuple[str, ...]
) -> None:
    world = grant_world()
    value, _ = world.put_refresh()
    tokens = await world.refresh_with(value, scope=requested)
    assert tokens.access.scope == scope
    rotate = world.storage.refresh_tokens.calls[-1][1]
    assert rotate["successor"].scope == "restaurants:read restaurent"


@pytest.mark.parametrize("requested", ["restaurants:read openid", "email", "restaurants:write"])
async def test_scope_may_not_widen(requested: str) -> None:
    world = grant_world()
    value, record = world.put_refresh()
    error = await refused(world, value, scope=requested)
    assert (type(error), error.description) == (
        InvalidScope,
        "the requested scope exceeds the scope originally granted",
    )
    assert world.storage.refresh_tokens.rows[record.selector].rotated_at is None


@pytest.mark.parametrize("users", [(), (replace(ALICE, disabled=True),)])
async def test_a_disabled_or_deleted_user_cannot_refresh(users: tuple[User, ...]) -> None:
    world = grant_world(users=users)
    value, _ = world.put_refresh()
    error = await refused(world, value)
    assert (type(error), error.description) == (
        InvalidGrant,
        "the user of this grant is disabled or no longer exists",
    )


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        (None, "invalid refresh token"),
        ("revoked", "refresh token revoked"),
        ("expired", "refresh token expired"),
    ],
)
async def test_a_rotation_that_fails_refuses(outcome: str | None, message: str) -> None:
    world = grant_world()
    value, record = world.put_refresh()
    family = world.storage.refresh_tokens.families["family-1"]
    world.storage.refresh_tokens.scripted = [
        None if outcome is None else RefreshRotation(outcome, record, family)  # type: ignore[arg-type]
    ]
    error = await refused(world, value)
    assert (type(error), error.description) == (InvalidGrant, message)
    assert world.audit.events == []
    assert world.voider.calls == []
    assert family.revoked_at is None


async def test_the_stores_own_refusals_say_why() -> None:
    world = grant_world()
    revoked, _ = world.put_refresh(revoked_at=NOW - 1)
    expired, _ = world.put_refresh(family_id="family-2", expires_at=NOW)
    for value, message in ((revoked, "refresh token revoked"), (expired, "refresh token expired")):
        error = await refused(world, value)
        assert (type(error), error.description) == (InvalidGrant, message)


async def test_reuse_of_a_rotated_token_revokes_the_family() -> None:
    world = grant_world()
    value, record = world.put_refresh()
    first = await world.refresh_with(value)
    world.clock.advance(10)
    error = await refused(world, value)
    assert (type(error), error.description) == (InvalidGrant, "refresh token already used")
    assert world.storage.refresh_tokens.calls[-1] == (
        "revoke_family",
        {"family_id": "family-1", "now": NOW + 10},
    )
    # The access token the reuse was issued is recorded nowhere: only the family's are voided.
    assert world.voider.calls == [(issued_of(first),)]
    assert world.storage.refresh_tokens.families["family-1"].revoked_at == NOW + 10
    assert world.audit.events == [
        (
            "refresh_token_reused",
            {
                "client_id": PUBLIC_ID,
                "user_id": USER_ID,
                "family_id": "family-1",
                "token_id": record.selector.hex(),
                "reason": "rotated",
            },
        ),
        (
            "refresh_family_revoked",
            {
                "client_id": PUBLIC_ID,
                "family_id": "family-1",
                "reason": "refresh_token_reused",
                "count": 1,
            },
        ),
    ]


async def test_within_the_grace_one_retry_gets_a_fresh_pair() -> None:
    world = grant_world(grace=10)
    value, _ = world.put_refresh()
    lost = await world.refresh_with(value)
    world.clock.advance(5)
    retry = await world.refresh_with(value)
    assert retry.refresh_token not in (None, lost.refresh_token)
    assert world.audit.events == []
    assert lost.refresh_token is not None
    error = await refused(world, lost.refresh_token)  # the unused successor was revoked
    assert error.description == "refresh token revoked"


async def test_within_the_grace_a_used_successor_is_a_reuse() -> None:
    world = grant_world(grace=10)
    value, record = world.put_refresh()
    second = await world.refresh_with(value)
    assert second.refresh_token is not None
    await world.refresh_with(second.refresh_token)
    world.clock.advance(5)
    error = await refused(world, value)
    assert error.description == "refresh token already used"
    assert world.audit.events[0] == (
        "refresh_token_reused",
        {
            "client_id": PUBLIC_ID,
            "user_id": USER_ID,
            "family_id": "family-1",
            "token_id": record.selector.hex(),
            "reason": "within grace, successor used",
        },
    )
    assert world.audit.events[1][1]["count"] == 2


def test_the_grant_declares_its_type_and_parameters() -> None:
    world = grant_world()
    assert world.refresh.grant_type == "refresh_token"
    assert world.refresh.parameters == ("refresh_token", "scope", "client_id")
