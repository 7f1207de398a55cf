"""Revocation (RFC 7009) decided case by case: which token is revoked, for whom, what is
recorded and what every process learns (kills the mutants of ``oauth/endpoints/revoke.py``;
see ``make mutate``)."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import pytest

from oauth_server.clock import FrozenClock
from oauth_server.crypto import new_split_token, parse_split_token
from oauth_server.errors import InvalidClient, InvalidRequest, InvalidToken
from oauth_server.oauth.client_auth import ClientAuthenticator
from oauth_server.oauth.clients import ClientDirectory
from oauth_server.oauth.endpoints.revoke import RevocationEndpoint
from oauth_server.oauth.http import OAuthRequest, OAuthResponse
from oauth_server.oauth.tokens.verify.claims import AccessClaims
from oauth_server.oauth.tokens.verify.opaque import OpaqueTokenVerifier
from oauth_server.oauth.tokens.verify.revocation import RevokedClients, RevokedJtis
from oauth_server.storage.models import (
    AccessTokenRecord,
    Change,
    ClientRevocation,
    IssuedToken,
    RefreshFamily,
    RefreshTokenRecord,
    RevokedToken,
)
from tests.fakes import (
    MemoryAudit,
    MemoryClients,
    MemoryRefreshTokens,
    MemoryTokens,
    MemoryVoider,
    make_client,
)
from tests.helpers import token_codec
from tests.signin import public_client

NOW = 1_800_000_000
JWT = "h.p.s"


class Revocations:
    def __init__(self) -> None:
        self.rows: dict[str, RevokedToken] = {}

    async def add(self, *, token: RevokedToken) -> bool:
        if token.jti in self.rows:
            return False
        self.rows[token.jti] = token
        return True


class Storage:
    def __init__(self) -> None:
        self.tokens = MemoryTokens()
        self.revocations = Revocations()
        self.refresh_tokens = MemoryRefreshTokens()


class Jwts:
    def __init__(self, **tokens: AccessClaims) -> None:
        self.tokens = tokens
        self.seen: list[str] = []

    async def verify(self, token: str) -> AccessClaims:
        self.seen.append(token)
        if token not in self.tokens:
            raise InvalidToken("the access token is not valid")
        return self.tokens[token]


def jwt_claims(client_id: str = "app", jti: str | None = "j-1") -> AccessClaims:
    return AccessClaims(
        client_id=client_id,
        subject=client_id,
        scope=frozenset(),
        issued_at=NOW - 10,
        expires_at=NOW + 500,
        jti=jti,
        token_format="jwt",
    )


class World:
    def __init__(self, jwts: Jwts | None = None, *, voider: MemoryVoider | None = None) -> None:
        self.clock = FrozenClock(NOW)
        self.storage = Storage()
        self.jwts = jwts or Jwts(**{JWT: jwt_claims()})
        self.revoked = RevokedJtis(clock=self.clock, max_token_ttl=3600)
        self.opaque = OpaqueTokenVerifier(
            self.storage.tokens,
            codec=token_codec(self.clock),
            issuer="https://as.example",
            clock=self.clock,
        )
        self.audit = MemoryAudit()
        clients = MemoryClients(
            make_client("app", "s1"), make_client("other", "s2"), public_client("spa")
        )
        self.voider = voider
        self.endpoint = RevocationEndpoint(
            authenticator=ClientAuthenticator(ClientDirectory(clients)),
            jwt_verifier=self.jwts,
            opaque_verifier=self.opaque,
            storage=self.storage,  # type: ignore[arg-type]
            codec=token_codec(self.clock),
            revoked=self.revoked,
            clock=self.clock,
            audit=self.audit,
            voider=voider,  # type: ignore[arg-type]
        )

    def opaque_token(self, client_id: str = "app") -> tuple[str, bytes]:
        split = new_split_token(NOW)
        self.storage.tokens.rows[split.selector] = AccessTokenRecord(
            selector=split.selector,
            verifier_hash=split.verifier_hash,
            client_id=client_id,
            subject=client_id,
            scope="a",
            issued_at=NOW,
            expires_at=NOW + 600,
            audience="https://api.example",
        )
        return split.value, split.selector

    async def revoke(self, client_id: str = "app", secret: str = "s1", **params: str) -> None:
        """Revoke as ``client_id`` with HTTP Basic (an empty ``secret``: ``none``)."""
        headers = {"content-type": "application/x-www-form-urlencoded"}
        if secret:
            basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
            headers["authorization"] = f"Basic {basic}"
        else:
            params = {"client_id": client_id, **params}
        response = await self.endpoint.handle(
            OAuthRequest(
                "POST",
                "/oauth/revoke",
                headers=headers,
                body=urlencode(params).encode(),
                client_ip="192.0.2.7",
            )
        )
        assert response == OAuthResponse(
            status=200, body=b"", headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
        )


async def test_a_jwt_of_the_caller_is_revoked_everywhere() -> None:
    world = World()
    world.clock.advance(5)
    await world.revoke(token=JWT)
    assert world.storage.revocations.rows == {
        "j-1": RevokedToken(jti="j-1", client_id="app", expires_at=NOW + 500, revoked_at=NOW + 5)
    }
    assert world.revoked.is_revoked("j-1")
    assert world.revoked._expiry == {"j-1": NOW + 500}
    assert world.audit.events == [
        (
            "token_revoked",
            {"client_id": "app", "token_id": "j-1", "token_type": "jwt", "ip": "192.0.2.7"},
        )
    ]
    # Again: nothing new is recorded.
    await world.revoke(token=JWT, token_type_hint="access_token")
    assert len(world.audit.events) == 1


async def test_another_clients_jwt_is_left_alone() -> None:
    world = World(Jwts(**{JWT: jwt_claims("other")}))
    await world.revoke(token=JWT)
    assert world.storage.revocations.rows == {}
    assert not world.revoked.is_revoked("j-1")
    assert world.audit.events == []


async def test_a_jwt_without_jti_or_invalid_is_left_alone() -> None:
    world = World(Jwts(**{JWT: jwt_claims(jti=None)}))
    await world.revoke(token=JWT)
    await world.revoke(token="x.y.z")
    assert world.storage.revocations.rows == {}
    assert world.audit.events == []
    assert world.jwts.seen == [JWT, "x.y.z"]


async def test_an_opaque_token_of_the_caller_is_revoked() -> None:
    world = World()
    token, selector = world.opaque_token()
    assert (await world.opaque.verify(token)).client_id == "app"  # cached now
    world.clock.advance(7)
    await world.revoke(token=token)
    assert world.storage.tokens.rows[selector].revoked_at == NOW + 7
    with pytest.raises(InvalidToken, match="revoked"):
        await world.opaque.verify(token)  # evicted from this process's cache at once
    assert world.audit.events == [
        (
            "token_revoked",
            {
                "client_id": "app",
                "token_id": selector.hex(),
                "token_type": "opaque",
                "ip": "192.0.2.7",
            },
        )
    ]
    assert world.jwts.seen == []
    await world.revoke(token=token)  # already revoked: no second event
    assert len(world.audit.events) == 1


async def test_an_opaque_token_needs_its_secret_part_and_its_owner() -> None:
    world = World()
    token, selector = world.opaque_token()
    wrong = new_split_token(NOW).value
    same_selector = token[:16] + wrong[16:]
    await world.revoke(token=same_selector)
    await world.revoke(token=wrong)
    await world.revoke(token="not a token")
    await world.revoke("other", "s2", token=token)
    assert world.storage.tokens.rows[selector].revoked_at is None
    assert world.audit.events == []
    assert (await world.opaque.verify(token)).client_id == "app"


async def test_the_token_parameter_is_required_and_the_caller_authenticated() -> None:
    world = World()
    with pytest.raises(InvalidRequest) as caught:
        await world.revoke(TOKEN=JWT)
    assert caught.value.description == "the token parameter is required"
    with pytest.raises(InvalidClient):
        await world.revoke("app", "wrong", token=JWT)
    assert world.jwts.seen == []


# --- client-wide cutoffs (a deleted client, `clients revoke-tokens`) -----------------------


def issued(client_id: str, issued_at: int) -> AccessClaims:
    return AccessClaims(
        client_id=client_id,
        subject=client_id,
        scope=frozenset(),
        issued_at=issued_at,
        expires_at=issued_at + 3600,
    )


def test_a_cutoff_voids_the_clients_tokens_issued_up_to_it() -> None:
    cutoffs = RevokedClients(clock=FrozenClock(1000), max_token_age=500)
    cutoffs.add("app", 900)
    assert cutoffs.voids(issued("app", 900))  # its own second too
    assert cutoffs.voids(issued("app", 899))
    assert not cutoffs.voids(issued("app", 901))
    assert not cutoffs.voids(issued("other", 0))
    cutoffs.add("app", 800)  # an earlier cutoff arriving late never moves it back
    assert cutoffs.voids(issued("app", 900))
    cutoffs.add("app", 950)
    assert cutoffs.voids(issued("app", 950))
    assert len(cutoffs) == 1


def test_cutoffs_are_dropped_at_the_prune_interval_once_they_cover_nothing() -> None:
    clock = FrozenClock(0)
    cutoffs = RevokedClients(clock=clock, max_token_age=100)
    cutoffs.add("gone", -101)  # older than any acceptable token: the first add prunes at once
    assert len(cutoffs) == 0
    cutoffs.add("edge", -40)
    cutoffs.add("early", -41)
    cutoffs.add("earlier", -42)
    clock.advance(59)
    # The prune is a pass over the whole map: at most one a minute, not one per add.
    cutoffs.add("x", 59)
    assert len(cutoffs) == 4
    clock.advance(1)
    cutoffs.add("y", 60)  # t = 60: prune; a token issued at -40 may still be accepted
    assert cutoffs.voids(issued("edge", -40))
    assert not cutoffs.voids(issued("early", -41))
    assert not cutoffs.voids(issued("earlier", -42))
    assert len(cutoffs) == 3
    clock.advance(60)
    cutoffs.add("z", 120)  # t = 120: the next prune; "edge" (-40 < 20) goes
    assert not cutoffs.voids(issued("edge", -40))
    assert len(cutoffs) == 3


async def test_loading_reads_the_cutoffs_still_active_now() -> None:
    class Repository:
        def __init__(self) -> None:
            self.asked: list[int] = []

        async def active_clients(self, *, now: int) -> list[ClientRevocation]:
            self.asked.append(now)
            return [
                ClientRevocation(client_id="app", revoked_at=900, expires_at=1500),
                ClientRevocation(client_id="b", revoked_at=950, expires_at=1500),
            ]

    cutoffs = RevokedClients(clock=FrozenClock(1000.7), max_token_age=500)
    repository = Repository()
    await cutoffs.load(repository)  # type: ignore[arg-type]
    assert repository.asked == [1000]
    assert cutoffs.voids(issued("app", 900))
    assert not cutoffs.voids(issued("app", 901))
    assert cutoffs.voids(issued("b", 950))
    assert len(cutoffs) == 2


def test_feed_changes_carry_the_cutoff_then_the_client_id() -> None:
    cutoffs = RevokedClients(clock=FrozenClock(1000), max_token_age=500)
    cutoffs.on_change(Change(change_id=1, kind="client_tokens", key="900 app"))
    # RFC 6749 Appendix A.1: a client id may contain spaces; only the first one separates.
    cutoffs.on_change(Change(change_id=2, kind="client_tokens", key="950 my app"))
    assert cutoffs.voids(issued("app", 900))
    assert cutoffs.voids(issued("my app", 950))
    assert not cutoffs.voids(issued("app", 901))
    for key in ("900", "900 ", "soon app", " app", "", "-5 app"):  # unreadable: ignored
        cutoffs.on_change(Change(change_id=3, kind="client_tokens", key=key))
    assert len(cutoffs) == 2


# --- refresh tokens: revoking one revokes its family (with a voider) ---------------------------


def refresh_token(world: World, client_id: str = "app", value: str | None = None) -> str:
    """A refresh token of ``client_id`` in family ``f-1`` with two access tokens issued from
    it; ``value``: the split token to store (one that is an access token as well)."""
    value = value or new_split_token(NOW).value
    parsed = parse_split_token(value)
    assert parsed is not None
    store = world.storage.refresh_tokens
    store.rows[parsed[0]] = RefreshTokenRecord(
        selector=parsed[0],
        verifier_hash=parsed[1],
        family_id="f-1",
        client_id=client_id,
        user_id="u-1",
        scope="a",
        issued_at=NOW,
        expires_at=NOW + 3600,
    )
    store.families["f-1"] = RefreshFamily("f-1", client_id, "u-1", NOW, NOW + 7200)
    store.issued["f-1"] = list(FAMILY_TOKENS)
    return value


FAMILY_TOKENS = (
    IssuedToken("j-a", "jwt", "app", NOW + 600),
    IssuedToken("ab" * 16, "opaque", "app", NOW + 600),
)


def family_revoked(family_id: str = "f-1", client_id: str = "app", count: int = 2) -> object:
    return (
        "refresh_family_revoked",
        {
            "client_id": client_id,
            "family_id": family_id,
            "reason": "revocation request",
            "count": count,
        },
    )


def token_revoked(client_id: str = "app") -> object:
    return (
        "token_revoked",
        {
            "client_id": client_id,
            "token_id": "f-1",
            "token_type": "refresh_token",
            "ip": "192.0.2.7",
        },
    )


@pytest.mark.parametrize("hint", [None, "refresh_token", "access_token"])
async def test_a_refresh_token_of_the_caller_revokes_its_family(hint: str | None) -> None:
    world = World(voider=MemoryVoider())
    token = refresh_token(world)
    world.clock.advance(5.5)
    await world.revoke(token=token, **({"token_type_hint": hint} if hint else {}))
    store = world.storage.refresh_tokens
    assert [c for c in store.calls if c[0] == "revoke_family"] == [
        ("revoke_family", {"family_id": "f-1", "now": NOW + 5})
    ]
    assert store.families["f-1"].revoked_at == NOW + 5
    assert world.voider is not None
    assert world.voider.calls == [FAMILY_TOKENS]
    assert world.audit.events == [family_revoked(), token_revoked()]


async def test_a_public_client_revokes_its_refresh_token_with_its_client_id_alone() -> None:
    world = World(voider=MemoryVoider())
    token = refresh_token(world, "spa")
    await world.revoke("spa", "", token=token, token_type_hint="refresh_token")
    assert world.storage.refresh_tokens.families["f-1"].revoked_at == NOW
    assert world.audit.events == [family_revoked(client_id="spa"), token_revoked("spa")]


async def test_without_a_voider_refresh_tokens_are_not_revoked_here() -> None:
    world = World()
    token = refresh_token(world)
    await world.revoke(token=token, token_type_hint="refresh_token")
    assert world.storage.refresh_tokens.calls == []
    assert world.audit.events == []
    with pytest.raises(InvalidClient):  # and `none` authenticates no one
        await world.revoke("spa", "", token=token)


@pytest.mark.parametrize("hint", ["refresh_token", "access_token"])
async def test_refresh_tokens_that_are_not_the_callers_are_left_alone(hint: str) -> None:
    world = World(voider=MemoryVoider())
    token = refresh_token(world, "other")
    other = new_split_token(NOW).value
    for value in (token, other, token[:16] + other[16:], token[:-1], "not a token"):
        await world.revoke(token=value, token_type_hint=hint)
    store = world.storage.refresh_tokens
    assert [c[0] for c in store.calls if c[0] != "get"] == []
    assert store.families["f-1"].revoked_at is None
    assert world.audit.events == []
    assert world.voider is not None
    assert world.voider.calls == []


async def test_a_family_revoked_already_is_not_revoked_again() -> None:
    world = World(voider=MemoryVoider())
    token = refresh_token(world)
    store = world.storage.refresh_tokens
    store.families["f-1"] = RefreshFamily("f-1", "app", "u-1", NOW, NOW + 7200, revoked_at=NOW)
    await world.revoke(token=token, token_type_hint="refresh_token")
    # The store voided nothing new: no token_revoked event.
    assert world.audit.events == [family_revoked(count=0)]


@pytest.mark.parametrize(("hint", "revoked"), [("refresh_token", "refresh"), (None, "access")])
async def test_the_hint_decides_which_store_is_searched_first(
    hint: str | None, revoked: str
) -> None:
    """A value that is both an access token and a refresh token (impossible in practice: both
    are random) shows the order in which the stores are searched."""
    world = World(voider=MemoryVoider())
    value, selector = world.opaque_token()
    refresh_token(world, value=value)
    await world.revoke(token=value, **({"token_type_hint": hint} if hint else {}))
    access_revoked = world.storage.tokens.rows[selector].revoked_at is not None
    family_revoked_ = world.storage.refresh_tokens.families["f-1"].revoked_at is not None
    assert (access_revoked, family_revoked_) == (revoked == "access", revoked == "refresh")
    assert [kind for kind, _ in world.audit.events][-1] == "token_revoked"
    assert world.audit.events[-1][1]["token_type"] == (
        "opaque" if revoked == "access" else "refresh_token"
    )


@pytest.mark.parametrize("voider", [None, MemoryVoider()])
async def test_an_access_token_hinted_as_a_refresh_token_is_still_found(
    voider: MemoryVoider | None,
) -> None:
    # RFC 7009 §2.1: a wrong hint only widens the search.
    world = World(voider=voider)
    token, selector = world.opaque_token()
    theirs, their_selector = world.opaque_token("other")
    await world.revoke(token=theirs, token_type_hint="refresh_token")
    await world.revoke(token=token, token_type_hint="refresh_token")
    assert world.storage.tokens.rows[their_selector].revoked_at is None
    assert world.storage.tokens.rows[selector].revoked_at == NOW
    assert world.audit.events == [
        (
            "token_revoked",
            {
                "client_id": "app",
                "token_id": selector.hex(),
                "token_type": "opaque",
                "ip": "192.0.2.7",
            },
        )
    ]
