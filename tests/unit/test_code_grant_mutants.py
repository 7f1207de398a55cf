"""The authorization_code grant decided case by case on in-memory stores: what a redemption
asks the store, the decision it hands the token service, what it records, and what a replay
revokes — each refusal with its exact message (kills the mutants of
``oauth/grants/authorization_code.py``; see ``make mutate``). The same grant on SQLite and
PostgreSQL: ``test_user_grants.py``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from oauth_server.clock import FrozenClock
from oauth_server.crypto import new_split_token
from oauth_server.errors import InvalidGrant, InvalidRequest, OAuthError
from oauth_server.oauth.tokens.issue import Authorization, TokenSet, UserContext
from oauth_server.storage.models import (
    Client,
    IssuedToken,
    RefreshFamily,
    RefreshTokenRecord,
)
from tests.helpers import token_codec
from tests.signin import (
    ALICE,
    GRANT_NOW,
    GRANT_RESOURCE,
    OTHER_ID,
    PUBLIC_ID,
    REDIRECT,
    USER_GRANTS,
    USER_ID,
    GrantWorld,
    confidential_client,
    grant_world,
    public_client,
)

NOW = GRANT_NOW


def exchange(code: str, verifier: str | None = None, **extra: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        **extra,
    }
    return {k: v for k, v in params.items() if v is not None}


def issued_of(tokens: TokenSet, client_id: str = PUBLIC_ID) -> IssuedToken:
    return IssuedToken(
        token_id=tokens.access.token_id,
        token_format="opaque",
        client_id=client_id,
        expires_at=NOW + 600,
    )


async def refused(
    world: GrantWorld, params: dict[str, str], client: Client | None = None
) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        await world.redeem(params, client)
    return caught.value


async def test_a_code_is_redeemed_for_exactly_what_it_records() -> None:
    world = grant_world()
    value, code, verifier = world.put_code(
        scope="restaurants:read restaurent",
        resource="https://a.example https://b.example",
        nonce="n-1",
        session_id="sid-1",
        auth_time=NOW - 100,
    )
    decision = await world.validate_code(exchange(value, verifier))
    assert decision == Authorization(
        client=public_client(),
        subject=USER_ID,
        scope=("restaurants:read", "restaurent"),
        audience=("https://a.example", "https://b.example"),
        user=UserContext(
            user_id=USER_ID, nonce="n-1", auth_time=NOW - 100, session_id="sid-1", user=ALICE
        ),
    )
    assert world.storage.codes.calls == [
        ("consume", {"selector": code.selector, "verifier_hash": code.verifier_hash, "now": NOW})
    ]
    assert world.storage.users.asked == [USER_ID]

    tokens = await world.tokens.issue(decision)
    assert tokens.refresh_token is not None
    parsed = token_codec(FrozenClock(0)).parse("refresh_token", tokens.refresh_token)
    assert parsed is not None
    selector, verifier_hash = parsed
    [(name, created)] = world.storage.refresh_tokens.calls
    family_id = created["family"].family_id
    assert len(family_id) == 32
    assert int(family_id, 16) >= 0
    assert (name, created) == (
        "create_family",
        {
            "family": RefreshFamily(
                family_id=family_id,
                client_id=PUBLIC_ID,
                user_id=USER_ID,
                created_at=NOW,
                expires_at=NOW + 7200,
            ),
            "token": RefreshTokenRecord(
                selector=selector,
                verifier_hash=verifier_hash,
                family_id=family_id,
                client_id=PUBLIC_ID,
                user_id=USER_ID,
                scope="restaurants:read restaurent",
                resource="https://a.example https://b.example",
                issued_at=NOW,
                expires_at=NOW + 3600,
                auth_time=NOW - 100,
                session_id="sid-1",
            ),
        },
    )
    assert world.storage.codes.calls[1:] == [
        (
            "record_issued",
            {
                "selector": code.selector,
                "tokens": (issued_of(tokens),),
                "refresh_family_id": family_id,
                "now": NOW,
            },
        )
    ]
    assert tokens.access.scope == ("restaurants:read", "restaurent")
    assert tokens.id_token is None
    assert world.voider.calls == []
    assert world.audit.events == []


async def test_a_code_without_resource_is_for_the_default_audience() -> None:
    world = grant_world()
    value, _, verifier = world.put_code()
    decision = await world.validate_code(exchange(value, verifier))
    assert decision.audience == (GRANT_RESOURCE,)
    assert decision.user == UserContext(user_id=USER_ID, user=ALICE)


@pytest.mark.parametrize(
    ("scope", "grant_types", "refresh"),
    [
        ("restaurants:read", USER_GRANTS, True),
        ("openid restaurants:read", USER_GRANTS, False),
        ("openid offline_access", USER_GRANTS, True),
        ("restaurants:read", frozenset({"authorization_code"}), False),
    ],
)
async def test_the_refresh_token_rule_decides_what_is_stored(
    scope: str, grant_types: frozenset[str], refresh: bool
) -> None:
    world = grant_world()
    value, code, verifier = world.put_code(scope=scope)
    client = public_client(grant_types=grant_types)
    tokens = await world.redeem(exchange(value, verifier), client)
    assert (tokens.refresh_token is not None) is refresh
    assert [name for name, _ in world.storage.refresh_tokens.calls] == (
        ["create_family"] if refresh else []
    )
    if not refresh:
        assert world.storage.codes.calls[1:] == [
            (
                "record_issued",
                {
                    "selector": code.selector,
                    "tokens": (issued_of(tokens),),
                    "refresh_family_id": None,
                    "now": NOW,
                },
            )
        ]


async def test_the_code_parameter_is_required() -> None:
    world = grant_world()
    error = await refused(world, {"grant_type": "authorization_code", "CODE": "x"})
    assert (type(error), error.description) == (
        InvalidRequest,
        "the code parameter is required",
    )
    assert world.storage.codes.calls == []


async def test_a_malformed_verifier_is_refused_before_the_code_is_touched() -> None:
    world = grant_world()
    value, code, _ = world.put_code()
    error = await refused(world, exchange(value, "short"))
    assert (type(error), error.description) == (
        InvalidRequest,
        "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]",
    )
    assert world.storage.codes.calls == []
    assert world.storage.codes.rows[code.selector].used_at is None


@pytest.mark.parametrize(
    ("case", "looked_up"),
    [
        ("not a code", False),
        ("unknown", True),
        ("right selector, another secret", True),
        ("another code's secret", True),
        ("truncated", False),
        ("expired", True),
    ],
)
async def test_codes_that_are_not_redeemable(case: str, looked_up: bool) -> None:
    # One answer for all (a malformed code must not tell itself apart from an unknown one);
    # only what the store is asked differs: nothing for what cannot be a code.
    message = "invalid or expired authorization code"
    world = grant_world()
    value, code, verifier = world.put_code(expires_at=NOW if case == "expired" else NOW + 60)
    other = new_split_token(NOW).value
    second, _, _ = world.put_code()
    presented = {
        "not a code": "not-a-code",
        "unknown": other,
        "right selector, another secret": value[:16] + other[16:],
        "another code's secret": value[:16] + second[16:],
        "truncated": value[:-1],
        "expired": value,
    }[case]
    error = await refused(world, exchange(presented, verifier))
    assert (type(error), error.description) == (InvalidGrant, message)
    consumed = [name for name, _ in world.storage.codes.calls]
    assert consumed == (["consume"] if looked_up else [])
    assert world.storage.codes.rows[code.selector].used_at is None
    assert world.audit.events == []


async def test_another_clients_code_is_spent_and_refused() -> None:
    world = grant_world()
    value, code, verifier = world.put_code(client_id=OTHER_ID)
    error = await refused(world, exchange(value, verifier))
    assert (type(error), error.description) == (
        InvalidGrant,
        "authorization code was issued to another client",
    )
    assert world.storage.codes.rows[code.selector].used_at == NOW  # spent all the same
    assert world.storage.users.asked == []


@pytest.mark.parametrize(
    ("stored", "sent", "message"),
    [
        (REDIRECT, REDIRECT, None),
        (
            REDIRECT,
            "http://127.0.0.1:9999/other",
            "redirect_uri does not match the authorization request",
        ),
        (REDIRECT, None, "redirect_uri does not match the authorization request"),
        (REDIRECT, REDIRECT + "/", "redirect_uri does not match the authorization request"),
        ("", None, None),
        ("", REDIRECT, None),
        ("", "http://127.0.0.1:9999/other", "redirect_uri is not registered for this client"),
    ],
)
async def test_redirect_uri_rules(stored: str, sent: str | None, message: str | None) -> None:
    world = grant_world()
    value, _, verifier = world.put_code(redirect_uri=stored)
    params = exchange(value, verifier, redirect_uri=sent)  # None: left out
    if message is None:
        await world.redeem(params)
        return
    error = await refused(world, params)
    assert (type(error), error.description) == (InvalidGrant, message)


@pytest.mark.parametrize(
    ("client", "message"),
    [
        (confidential_client(require_pkce=False), None),
        (confidential_client(), "this client must use PKCE"),
        (public_client(require_pkce=False), "this client must use PKCE"),
    ],
)
async def test_who_must_use_pkce(client: Client, message: str | None) -> None:
    world = grant_world()
    value, _, _ = world.put_code(
        client_id=client.client_id, code_challenge="", code_challenge_method=""
    )
    if message is None:
        await world.redeem(exchange(value), client)
        return
    error = await refused(world, exchange(value), client)
    assert (type(error), error.description) == (InvalidGrant, message)


@pytest.mark.parametrize(
    ("verifier", "error", "message"),
    [
        (None, InvalidGrant, "code_verifier is required for this code"),
        ("w" * 43, InvalidGrant, "code_verifier does not match the code_challenge"),
    ],
)
async def test_the_verifier_must_prove_the_challenge(
    verifier: str | None, error: type[OAuthError], message: str
) -> None:
    world = grant_world()
    value, _, _ = world.put_code()
    caught = await refused(world, exchange(value, verifier))
    assert (type(caught), caught.description) == (error, message)


async def test_a_verifier_without_a_stored_challenge_is_a_downgrade() -> None:
    world = grant_world()
    client = confidential_client(require_pkce=False)
    value, _, _ = world.put_code(
        client_id=client.client_id, code_challenge="", code_challenge_method=""
    )
    caught = await refused(world, exchange(value, "v" * 43), client)
    assert (type(caught), caught.description) == (
        InvalidRequest,
        "code_verifier sent, but the authorization request had no PKCE",
    )


@pytest.mark.parametrize("users", [(), (replace(ALICE, disabled=True),)])
async def test_a_disabled_or_deleted_user_gets_nothing(users: tuple[Any, ...]) -> None:
    world = grant_world(users=users)
    value, _, verifier = world.put_code()
    error = await refused(world, exchange(value, verifier))
    assert (type(error), error.description) == (
        InvalidGrant,
        "the user of this grant is disabled or no longer exists",
    )
    assert world.storage.users.asked == [USER_ID]


async def test_a_replay_revokes_everything_issued_from_the_code() -> None:
    world = grant_world()
    value, code, verifier = world.put_code()
    first = await world.redeem(exchange(value, verifier))
    assert first.refresh_token is not None
    family_id = world.storage.codes.rows[code.selector].refresh_family_id
    assert family_id is not None
    later = IssuedToken("jti-later", "jwt", PUBLIC_ID, NOW + 900)  # from a refresh since
    world.storage.refresh_tokens.issued[family_id].append(later)
    world.clock.advance(10)
    error = await refused(world, exchange(value, verifier))
    assert (type(error), error.description) == (InvalidGrant, "authorization code already used")
    assert world.storage.codes.calls[-1] == (
        "revoke_issued",
        {"selector": code.selector, "now": NOW + 10},
    )
    assert world.voider.calls == [(issued_of(first), later)]
    assert world.storage.refresh_tokens.families[family_id].revoked_at == NOW + 10
    assert world.audit.events == [
        (
            "authorization_code_replayed",
            {
                "client_id": PUBLIC_ID,
                "token_id": code.selector.hex(),
                "reason": "code redeemed twice",
                "count": 2,
            },
        )
    ]


@pytest.mark.parametrize("case", ["another client", "wrong verifier", "no verifier"])
async def test_an_otherwise_invalid_replay_revokes_nothing(case: str) -> None:
    world = grant_world()
    value, _, verifier = world.put_code()
    await world.redeem(exchange(value, verifier))
    client = public_client(OTHER_ID) if case == "another client" else None
    presented = {"another client": verifier, "wrong verifier": "w" * 43, "no verifier": None}
    await refused(world, exchange(value, presented[case]), client)
    assert [name for name, _ in world.storage.codes.calls] == [
        "consume",
        "record_issued",
        "consume",
    ]
    assert world.voider.calls == []
    assert world.audit.events == []


async def test_a_replay_during_the_redemption_voids_what_it_issues() -> None:
    world = grant_world()
    value, code, verifier = world.put_code()
    decision = await world.validate_code(exchange(value, verifier))
    # Another request presents the code between this redemption and its record.
    await world.storage.codes.consume(
        selector=code.selector, verifier_hash=code.verifier_hash, now=NOW
    )
    world.clock.advance(3)
    tokens = await world.tokens.issue(decision)
    assert tokens.refresh_token is not None  # the one redemption that won still answers
    assert world.storage.codes.calls[-1] == (
        "revoke_issued",
        {"selector": code.selector, "now": NOW + 3},
    )
    assert world.voider.calls == [(replace(issued_of(tokens), expires_at=NOW + 603),)]
    assert world.audit.events == [
        (
            "authorization_code_replayed",
            {
                "client_id": PUBLIC_ID,
                "token_id": code.selector.hex(),
                "reason": "replay during redemption",
                "count": 1,
            },
        )
    ]


async def test_a_plain_challenge_is_never_accepted() -> None:
    world = grant_world()
    verifier = "p" * 43
    value, _, _ = world.put_code(code_challenge=verifier, code_challenge_method="plain")
    error = await refused(world, exchange(value, verifier))
    assert (type(error), error.description) == (InvalidGrant, "unsupported code_challenge_method")


def test_the_grant_declares_its_type_and_parameters() -> None:
    world = grant_world()
    assert world.code.grant_type == "authorization_code"
    assert world.code.parameters == ("code", "redirect_uri", "code_verifier", "client_id")
