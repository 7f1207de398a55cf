"""Frozen records the repositories return. Times are integer Unix seconds (UTC)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "MAX_USER_AGENT",
    "AccessTokenRecord",
    "AuditQuery",
    "AuditRecord",
    "AuthMethod",
    "AuthorizationCode",
    "BrowserSession",
    "Change",
    "Client",
    "ClientRegistration",
    "ClientRevocation",
    "ClientType",
    "CodeOutcome",
    "CodeRedemption",
    "Consent",
    "FamilyRevocation",
    "InitialAccessToken",
    "Interaction",
    "InteractionLogin",
    "IssuedToken",
    "RefreshFamily",
    "RefreshRotation",
    "RefreshTokenRecord",
    "Restaurant",
    "RestaurantChanges",
    "RevokedToken",
    "RotationOutcome",
    "SigningKeyRecord",
    "TokenFormat",
    "User",
    "UserClientGrant",
    "UserProfileChanges",
]

TokenFormat = Literal["jwt", "opaque"]
ClientType = Literal["confidential", "public"]
"""RFC 6749 §2.1: a confidential client can keep a secret; a public one (a native or browser
app) cannot."""
AuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]
"""Token endpoint authentication methods (RFC 7591 §2): ``none`` is for public clients only."""
SECRET_AUTH_METHODS: frozenset[AuthMethod] = frozenset(
    {"client_secret_basic", "client_secret_post"}
)
JTI_CHANGE = "jti"
"""Change-feed kind announcing a revoked JWT id (published with the revocation itself)."""
TOKEN_CHANGE = "token"
"""Change-feed kind announcing a revoked opaque token (key: hex of its selector)."""
CLIENT_REVOCATION_CHANGE = "client_tokens"
"""Change-feed kind announcing that a client's tokens issued so far are void (key:
``"<revoked_at> <client_id>"``)."""
RESTAURANTS_CHANGE = "restaurants"
"""Change-feed kind announcing that restaurant data changed (key: the id, or ``*``)."""


@dataclass(frozen=True, slots=True)
class Client:
    """A registered OAuth client. ``secret_hash`` is ``None`` for public clients.

    The defaults describe a client registered before client types existed (migration 0007
    gives old rows the same values): confidential, either secret method, no redirect URIs.
    """

    client_id: str
    secret_hash: str | None
    name: str = ""
    grant_types: frozenset[str] = frozenset({"client_credentials"})
    scopes: frozenset[str] = frozenset()
    """Scopes the client may request."""
    default_scopes: tuple[str, ...] = ()
    """Scopes granted when the request names none (RFC 6749 §3.3)."""
    token_format: TokenFormat = "jwt"
    resources: tuple[str, ...] = ()
    """Resource indicators (RFC 8707) the client may request as audience; the first is its
    default. Empty: only the server's own resource (the restaurants API)."""
    created_at: int = 0
    updated_at: int = 0
    introspect: tuple[str, ...] = ()
    """Audiences whose tokens this client may introspect as a resource server (RFC 7662
    §2.1). Empty: it learns only about its own tokens."""
    client_type: ClientType = "confidential"
    auth_methods: frozenset[AuthMethod] = SECRET_AUTH_METHODS
    """The token endpoint authentication methods it may use: ``{"none"}`` for a public client,
    a non-empty subset of the two secret methods for a confidential one (both for clients
    registered before 0007, as they were accepted then)."""
    redirect_uris: tuple[str, ...] = ()
    """Registered redirect URIs, in registration order (the first is the default when it is
    the only one), each checked by :func:`oauth_server.oauth.redirect_uris.check_redirect_uri`."""
    post_logout_redirect_uris: tuple[str, ...] = ()
    """Where RP-initiated logout may send the browser back to (same rules)."""
    require_consent: bool = True
    """Ask the user before granting; ``False`` only for first-party clients."""
    require_pkce: bool = True
    """PKCE on every authorization request; only a confidential client may have ``False``."""


@dataclass(frozen=True, slots=True)
class AccessTokenRecord:
    """An opaque access token as stored: its selector and the SHA-256 of its secret part
    (see :class:`oauth_server.crypto.SplitToken`); never the token itself."""

    selector: bytes
    verifier_hash: bytes
    client_id: str
    subject: str
    scope: str
    issued_at: int
    expires_at: int
    revoked_at: int | None = None
    audience: str = ""


@dataclass(frozen=True, slots=True)
class SigningKeyRecord:
    """A signing key as stored: the private key encrypted, the public JWK as JSON."""

    kid: str
    generation: int
    alg: str
    public_jwk: str
    private_key: bytes
    created_at: int
    activates_at: int
    removed_at: int | None = None


@dataclass(frozen=True, slots=True)
class RevokedToken:
    """A revoked JWT access token, remembered by ``jti`` until it would have expired anyway."""

    jti: str
    client_id: str
    expires_at: int
    revoked_at: int


@dataclass(frozen=True, slots=True)
class ClientRevocation:
    """Every access token issued to ``client_id`` at or before ``revoked_at`` (its ``iat``) is
    void: the client was deleted, or all its tokens were revoked. Kept until ``expires_at``,
    when no token it covers can still be accepted."""

    client_id: str
    revoked_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class Restaurant:
    """A restaurant; ``restaurant_id`` is 24 lower-case hex digits (a MongoDB ObjectId)."""

    restaurant_id: str
    name: str
    address: str
    open: str = ""
    close: str = ""
    created_at: int = 0
    updated_at: int = 0


@dataclass(frozen=True, slots=True)
class RestaurantChanges:
    """A partial update: ``None`` leaves a field as it is."""

    name: str | None = None
    address: str | None = None
    open: str | None = None
    close: str | None = None

    def as_columns(self) -> dict[str, str]:
        values = {"name": self.name, "address": self.address, "open": self.open}
        values["close"] = self.close
        return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change feed that keeps every process's caches honest."""

    change_id: int
    kind: str
    key: str
    created_at: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One sealed security event of the audit trail (see :mod:`oauth_server.audit`).

    Each writing process appends to a chain of its own (``chain_id``), numbering its events
    ``seq`` = 1, 2, …; ``digest`` is the SHA-256 of the previous event's digest followed by the
    canonical JSON of this event, so a changed, removed or reordered row breaks the chain.
    ``at_ms`` is in milliseconds, not seconds: events a few milliseconds apart must keep their
    order when read across chains.
    """

    chain_id: str
    seq: int
    at_ms: int
    kind: str
    data: str
    """Canonical JSON of the event's fields (identifiers, addresses, reasons; never secrets)."""
    digest: bytes


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """What to select from the audit trail; every given criterion must hold."""

    kinds: tuple[str, ...] = ()
    """Any of these kinds (all kinds when empty)."""
    client_id: str | None = None
    user_id: str | None = None
    since_ms: int | None = None
    """``at_ms >= since_ms``."""
    until_ms: int | None = None
    """``at_ms < until_ms``."""
    before: tuple[int, str, int] | None = None
    """Page cursor: records strictly older than ``(at_ms, chain_id, seq)``."""


@dataclass(frozen=True, slots=True)
class User:
    """A person who can sign in. ``username`` is stored in its normalized (lower-case) form and
    is unique; ``user_id`` is the stable OpenID Connect ``sub``: random, never the username,
    never reused. The profile fields are the OIDC standard claims of the same names.
    ``updated_at`` is when the profile last changed (the ``updated_at`` claim)."""

    user_id: str
    username: str
    password_hash: str = field(repr=False)
    """The argon2id hash (PHC string format); never the password."""
    name: str = ""
    given_name: str = ""
    family_name: str = ""
    preferred_username: str = ""
    email: str = ""
    email_verified: bool = False
    disabled: bool = False
    is_admin: bool = False
    """May use the admin console and be granted the ``admin`` scope."""
    created_at: int = 0
    updated_at: int = 0


@dataclass(frozen=True, slots=True)
class UserProfileChanges:
    """A partial profile update: ``None`` leaves a claim as it is, ``""`` clears it."""

    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    preferred_username: str | None = None
    email: str | None = None
    email_verified: bool | None = None

    def as_columns(self) -> dict[str, str | bool]:
        values: dict[str, str | bool | None] = {
            "name": self.name,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "preferred_username": self.preferred_username,
            "email": self.email,
            "email_verified": self.email_verified,
        }
        return {key: value for key, value in values.items() if value is not None}


# --- Sign-in storage -------------------------------------------------------------------------
# Every handle a browser or client holds (code, refresh token, session cookie, interaction id)
# is a SplitToken (oauth_server.crypto): the row is found by its non-secret ``selector`` and
# holds only the SHA-256 of the 256-bit secret part (``verifier_hash``), compared in constant
# time. A database dump therefore yields no usable code, token, cookie or interaction id.


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """An access token issued from a code or a refresh family, remembered so that a code
    replay or a refresh-token reuse can void it. ``token_id`` is the JWT's ``jti`` or the hex
    selector of an opaque token (``token_format`` says which); kept until ``expires_at``."""

    token_id: str
    token_format: TokenFormat
    client_id: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    """An authorization code as stored (RFC 6749 §4.1.2), with everything the token request
    must match or carry over. ``used_at`` is set by the one redemption that succeeded,
    ``replayed_at`` by the first redemption attempted after it."""

    selector: bytes
    verifier_hash: bytes = field(repr=False)
    client_id: str
    redirect_uri: str
    user_id: str
    scope: str
    issued_at: int
    expires_at: int
    code_challenge: str = ""
    code_challenge_method: str = ""
    resource: str = ""
    nonce: str = ""
    session_id: str = ""
    auth_time: int = 0
    used_at: int | None = None
    replayed_at: int | None = None
    refresh_family_id: str | None = None
    """The refresh-token family issued from the code (:meth:`record_issued`)."""


CodeOutcome = Literal["consumed", "replayed"]


@dataclass(frozen=True, slots=True)
class CodeRedemption:
    """What :meth:`AuthorizationCodeRepository.consume` found. ``consumed``: this caller, and
    no other, redeemed the code. ``replayed``: it had been redeemed already; ``issued`` and
    ``code.refresh_family_id`` are what was issued from it (RFC 6749 §4.1.2: "SHOULD revoke
    … all tokens previously issued based on that authorization code")."""

    outcome: CodeOutcome
    code: AuthorizationCode
    issued: tuple[IssuedToken, ...] = ()


@dataclass(frozen=True, slots=True)
class RefreshFamily:
    """One grant's chain of refresh tokens: every rotation stays in the family, and the family
    dies as a whole (reuse, revocation, user disabled) or at ``expires_at`` (absolute lifetime,
    ``OAUTH_SERVER_REFRESH_TOKEN_MAX_TTL``)."""

    family_id: str
    client_id: str
    user_id: str
    created_at: int
    expires_at: int
    revoked_at: int | None = None


@dataclass(frozen=True, slots=True)
class RefreshTokenRecord:
    """A refresh token as stored. ``expires_at`` is its idle expiry (never past the family's);
    ``parent`` the selector of the token it replaced (``None`` for the family's first);
    ``rotated_at`` is set when its successor was issued."""

    selector: bytes
    verifier_hash: bytes = field(repr=False)
    family_id: str
    client_id: str
    user_id: str
    scope: str
    issued_at: int
    expires_at: int
    resource: str = ""
    parent: bytes | None = None
    rotated_at: int | None = None
    revoked_at: int | None = None
    auth_time: int = 0
    """When the user authenticated for the code the family began with (``0``: unknown)."""
    session_id: str = ""
    """The browser session of that sign-in (the ID token's ``sid``)."""


RotationOutcome = Literal["rotated", "reused", "revoked", "expired"]


@dataclass(frozen=True, slots=True)
class RefreshRotation:
    """What :meth:`RefreshTokenRepository.rotate` found.

    * ``rotated``: this caller, and no other, consumed ``token``; ``successor`` is stored.
      ``replaced`` is set when this was the one retry the reuse grace allows: that earlier,
      never-used successor was revoked in the same transaction.
    * ``reused``: ``token`` had been rotated already (RFC 9700 §4.14.2: the grant revokes the
      family). ``within_grace`` says whether the rotation happened at most the grace window
      ago; ``successor_used`` whether the successor was rotated in turn.
    * ``revoked`` / ``expired``: the token or its family is revoked, or past its idle or
      absolute expiry; nothing was changed.
    """

    outcome: RotationOutcome
    token: RefreshTokenRecord
    family: RefreshFamily
    successor: RefreshTokenRecord | None = None
    within_grace: bool = False
    successor_used: bool = False
    replaced: bytes | None = None


@dataclass(frozen=True, slots=True)
class FamilyRevocation:
    """What a family revocation voided: the families, how many refresh tokens it revoked, and
    every access token recorded against them (voided in the same transaction)."""

    family_ids: tuple[str, ...] = ()
    refresh_tokens: int = 0
    access_tokens: tuple[IssuedToken, ...] = ()


@dataclass(frozen=True, slots=True)
class UserClientGrant:
    """What one client holds for one user in refresh tokens: its live families (neither
    revoked nor past their absolute expiry), when the first began and when a refresh token of
    them was last issued (the app's last sign-in or refresh)."""

    client_id: str
    families: int
    first_created_at: int
    last_used_at: int


@dataclass(frozen=True, slots=True)
class BrowserSession:
    """A signed-in browser. The cookie holds the SplitToken; ``session_id`` is a separate
    random public id (the ID token's ``sid``), never enough to present the cookie."""

    selector: bytes
    verifier_hash: bytes = field(repr=False)
    session_id: str
    user_id: str
    auth_time: int
    created_at: int
    last_seen: int
    expires_at: int
    amr: tuple[str, ...] = ()
    ended_at: int | None = None
    user_agent: str = ""
    """The browser's ``User-Agent`` when it signed in, cut to :data:`MAX_USER_AGENT` characters
    (``""``: unknown) — shown on the account page so a person can tell their sessions apart."""
    address: str = ""
    """The address it signed in from, as the server saw it (``""``: unknown)."""


MAX_USER_AGENT = 256
"""Characters of a ``User-Agent`` a browser session keeps."""


@dataclass(frozen=True, slots=True)
class Consent:
    """The scopes ``user_id`` granted ``client_id`` (remembered, so only new scopes are asked)."""

    user_id: str
    client_id: str
    scopes: frozenset[str]
    updated_at: int


@dataclass(frozen=True, slots=True)
class Interaction:
    """A validated authorize request waiting for the login and consent pages. ``params`` is
    its JSON; ``browser_hash`` the SHA-256 of the nonce in the browser's binding cookie.
    Login fills ``user_id``/``auth_time``/``amr``/``session_id``; consent ``consented``."""

    selector: bytes
    verifier_hash: bytes = field(repr=False)
    browser_hash: bytes = field(repr=False)
    client_id: str
    params: str
    created_at: int
    expires_at: int
    user_id: str | None = None
    auth_time: int | None = None
    amr: tuple[str, ...] = ()
    session_id: str | None = None
    consented: frozenset[str] | None = None
    """Scopes the user granted on the consent page; ``None`` until consent is done."""
    completed_at: int | None = None


@dataclass(frozen=True, slots=True)
class InteractionLogin:
    """The result of the login page."""

    user_id: str
    auth_time: int
    session_id: str
    amr: tuple[str, ...] = ()


# --- Dynamic client registration (RFC 7591 / RFC 7592) -------------------------------------


@dataclass(frozen=True, slots=True)
class InitialAccessToken:
    """An initial access token (RFC 7591 §1.2, §3): a bearer credential an operator hands out
    so that software can register clients. Stored as a split token: the hex of ``selector``
    is its public id, the secret part only as its SHA-256. It registers at most
    ``max_clients`` clients; ``clients_registered`` counts those it has registered."""

    selector: bytes
    verifier_hash: bytes = field(repr=False)
    max_clients: int
    created_at: int
    expires_at: int
    clients_registered: int = 0
    revoked_at: int | None = None
    description: str = ""

    @property
    def token_id(self) -> str:
        return self.selector.hex()


@dataclass(frozen=True, slots=True)
class ClientRegistration:
    """What dynamic registration keeps beside the :class:`Client`: the registration access
    token (RFC 7592 §3) as selector and SHA-256 of its secret part, the initial access token
    it was registered with (``None`` under open registration), and the client metadata the
    ``Client`` record does not hold (``client_uri``, ``logo_uri``, ``contacts``, ``tos_uri``,
    ``policy_uri``, ``software_id``, ``software_version``) as a JSON object."""

    client_id: str
    token_selector: bytes
    token_hash: bytes = field(repr=False)
    metadata: str
    created_at: int
    updated_at: int
    initial_token: bytes | None = None
