"""Sign-in test helpers: PKCE pairs, reading the pages' forms, registering a test app; and
clients, users and authorization codes put straight into storage, as the authorization endpoint
stores them (the grants only redeem them)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from oauth_server.clock import FrozenClock
from oauth_server.crypto import hash_secret, new_split_token
from oauth_server.oauth.client_auth import AuthenticatedClient
from oauth_server.oauth.grants import AuthorizationCodeGrant, RefreshTokenGrant, SignInGrants
from oauth_server.oauth.tokens.issue import (
    Authorization,
    OpaqueTokenIssuer,
    TokenService,
    TokenSet,
)
from oauth_server.oauth.tokens.issue import IdTokenIssuer as IdTokenIssuerHook
from oauth_server.services import Services
from oauth_server.storage.models import (
    AuthorizationCode,
    Client,
    CodeRedemption,
    RefreshFamily,
    RefreshTokenRecord,
    User,
)
from oauth_server.storage.protocols import Storage
from oauth_server.web.api import FastRouter
from tests.fakes import MemoryAudit, MemorySignInStorage, MemoryVoider
from tests.helpers import FORM, basic, token_codec

REDIRECT_URI = "https://app.example/callback"
USERNAME = "alice"
PASSWORD = "correct horse battery staple"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.actions: list[str] = []
        self.fields: dict[str, str] = {}
        self.buttons: list[tuple[str, str]] = []
        self.labels: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.actions.append(a.get("action", ""))
        elif tag == "input" and a.get("type") == "hidden":
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "input":
            self.fields.setdefault(a.get("name", ""), a.get("value", ""))
        elif tag == "button" and "name" in a:
            self.buttons.append((a["name"], a.get("value", "")))
        elif tag == "label":
            self.labels.append(a.get("for", ""))


def read_form(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    return parser


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class App:
    client_id: str
    redirect_uri: str = REDIRECT_URI
    secret: str | None = None


async def register_app(
    services: Services,
    *,
    name: str = "Menu Planner",
    require_consent: bool = True,
    redirect_uris: tuple[str, ...] = (REDIRECT_URI,),
    client_type: str = "public",
    require_pkce: bool = True,
    post_logout_redirect_uris: tuple[str, ...] = (),
    scopes: tuple[str, ...] = ("openid", "profile", "email", "restaurants:read"),
) -> App:
    new = await services.registry.create(
        name=name,
        grant_types=("authorization_code", "refresh_token"),
        scopes=scopes,
        default_scopes=("openid",),
        client_type=client_type,  # type: ignore[arg-type]
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=post_logout_redirect_uris,
        require_consent=require_consent,
        require_pkce=require_pkce,
    )
    return App(new.client.client_id, redirect_uris[0], new.secret)


async def ensure_user(services: Services) -> str:
    user = await services.accounts.find(USERNAME)
    if user is None:
        user = await services.accounts.create(USERNAME, PASSWORD, name="Alice Example")
    return user.user_id


async def consume_code(services: Services, code: str) -> CodeRedemption | None:
    parsed = services.codec.parse("authorization_code", code)
    assert parsed is not None
    return await services.storage.codes.consume(
        selector=parsed[0], verifier_hash=parsed[1], now=int(services.clock.now())
    )


PUBLIC_ID = "spa"
CONFIDENTIAL_ID = "webapp"
CONFIDENTIAL_SECRET = "webapp-secret-0123456789abcdef"
OTHER_ID = "other-spa"
REDIRECT = "http://127.0.0.1:9999/callback"
USER_ID = "user-alice"
SCOPES = frozenset(
    {"openid", "profile", "email", "offline_access", "restaurants:read", "restaurent"}
)
USER_GRANTS = frozenset({"authorization_code", "refresh_token"})


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_verifier() -> str:
    return secrets.token_urlsafe(48)  # 64 characters of the unreserved set


def public_client(client_id: str = PUBLIC_ID, **fields: object) -> Client:
    values: dict[str, object] = {
        "client_id": client_id,
        "secret_hash": None,
        "client_type": "public",
        "auth_methods": frozenset({"none"}),
        "grant_types": USER_GRANTS,
        "scopes": SCOPES,
        "redirect_uris": (REDIRECT,),
    }
    values.update(fields)
    return Client(**values)  # type: ignore[arg-type]


def confidential_client(**fields: object) -> Client:
    values: dict[str, object] = {
        "client_id": CONFIDENTIAL_ID,
        "secret_hash": hash_secret(CONFIDENTIAL_SECRET),
        "grant_types": USER_GRANTS | {"client_credentials"},
        "scopes": SCOPES,
        "redirect_uris": (REDIRECT,),
    }
    values.update(fields)
    return Client(**values)  # type: ignore[arg-type]


async def add_world(storage: Storage, *, user_disabled: bool = False) -> None:
    """The public client, another public client, the confidential one and the user alice."""
    for client in (public_client(), public_client(OTHER_ID), confidential_client()):
        await storage.clients.add(client=client)
    await storage.users.add(
        user=User(user_id=USER_ID, username="alice", password_hash="x", disabled=user_disabled)
    )


@dataclass(frozen=True)
class SeededCode:
    code: str
    verifier: str
    selector: bytes


async def seed_code(
    storage: Storage,
    *,
    now: float,
    client_id: str = PUBLIC_ID,
    scope: str = "restaurants:read",
    redirect_uri: str = REDIRECT,
    pkce: bool = True,
    ttl: int = 60,
    user_id: str = USER_ID,
    resource: str = "",
) -> SeededCode:
    """An authorization code as the authorization endpoint stores it."""
    verifier = new_verifier()
    token = new_split_token(now)
    await storage.codes.add(
        code=AuthorizationCode(
            selector=token.selector,
            verifier_hash=token.verifier_hash,
            client_id=client_id,
            redirect_uri=redirect_uri,
            user_id=user_id,
            scope=scope,
            issued_at=int(now),
            expires_at=int(now) + ttl,
            code_challenge=s256(verifier) if pkce else "",
            code_challenge_method="S256" if pkce else "",
            resource=resource,
        )
    )
    return SeededCode(token.value, verifier, token.selector)


# --- the user grants on in-memory stores (fast: the mutation tests drive them) -----------------

GRANT_NOW = 1_800_000_000
GRANT_RESOURCE = "https://api.example"
ALICE = User(user_id=USER_ID, username="alice", password_hash="x")


@dataclass
class GrantWorld:
    """The code and refresh grants over :class:`~tests.fakes.MemorySignInStorage`; the clock
    stands 0.75 s past :data:`GRANT_NOW`, so every time a grant records is seen to be a
    whole second."""

    storage: MemorySignInStorage
    clock: FrozenClock
    voider: MemoryVoider
    audit: MemoryAudit
    signin: SignInGrants
    tokens: TokenService
    code: AuthorizationCodeGrant
    refresh: RefreshTokenGrant

    async def validate_code(
        self, params: dict[str, str], client: Client | None = None
    ) -> Authorization:
        who = AuthenticatedClient(client or public_client(), "none")
        return await self.code.validate(client=who, params=params)

    async def redeem(self, params: dict[str, str], client: Client | None = None) -> TokenSet:
        return await self.tokens.issue(await self.validate_code(params, client))

    async def validate_refresh(
        self, token: str, client: Client | None = None, **params: str
    ) -> Authorization:
        who = AuthenticatedClient(client or public_client(), "none")
        return await self.refresh.validate(
            client=who, params={"grant_type": "refresh_token", "refresh_token": token, **params}
        )

    async def refresh_with(
        self, token: str, client: Client | None = None, **params: str
    ) -> TokenSet:
        return await self.tokens.issue(await self.validate_refresh(token, client, **params))

    def put_code(self, **fields: Any) -> tuple[str, AuthorizationCode, str]:
        """A stored code (PKCE S256 unless ``code_challenge`` is given): its value, the
        record and the verifier."""
        verifier = new_verifier()
        token = new_split_token(GRANT_NOW)
        values: dict[str, Any] = {
            "selector": token.selector,
            "verifier_hash": token.verifier_hash,
            "client_id": PUBLIC_ID,
            "redirect_uri": REDIRECT,
            "user_id": USER_ID,
            "scope": "restaurants:read",
            "issued_at": GRANT_NOW,
            "expires_at": GRANT_NOW + 60,
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        }
        values.update(fields)
        code = AuthorizationCode(**values)
        self.storage.codes.rows[code.selector] = code
        return token.value, code, verifier

    def put_refresh(self, **fields: Any) -> tuple[str, RefreshTokenRecord]:
        """A stored refresh token, the first of a new family of its own."""
        token = new_split_token(GRANT_NOW)
        values: dict[str, Any] = {
            "selector": token.selector,
            "verifier_hash": token.verifier_hash,
            "family_id": "family-1",
            "client_id": PUBLIC_ID,
            "user_id": USER_ID,
            "scope": "restaurants:read restaurent",
            "issued_at": GRANT_NOW,
            "expires_at": GRANT_NOW + 3600,
        }
        values.update(fields)
        record = RefreshTokenRecord(**values)
        self.storage.refresh_tokens.rows[record.selector] = record
        self.storage.refresh_tokens.families.setdefault(
            record.family_id,
            RefreshFamily(
                family_id=record.family_id,
                client_id=record.client_id,
                user_id=record.user_id,
                created_at=GRANT_NOW,
                expires_at=GRANT_NOW + 7200,
            ),
        )
        return token.value, record


def grant_world(
    *,
    grace: int = 0,
    users: tuple[User, ...] = (ALICE,),
    id_tokens: Callable[[FrozenClock], IdTokenIssuerHook] | None = None,
) -> GrantWorld:
    """Refresh tokens idle out after 3600 s and their families after 7200 s; opaque access
    tokens live 600 s."""
    clock = FrozenClock(GRANT_NOW + 0.75)
    storage = MemorySignInStorage(*users)
    voider = MemoryVoider()
    audit = MemoryAudit()
    signin = SignInGrants(
        storage=storage,  # type: ignore[arg-type]
        clock=clock,
        voider=voider,  # type: ignore[arg-type]
        default_resource=GRANT_RESOURCE,
        codec=token_codec(clock),
        refresh_idle_ttl=3600,
        refresh_max_ttl=7200,
        refresh_reuse_grace=grace,
        audit=audit,
    )
    tokens = TokenService(
        {
            "opaque": OpaqueTokenIssuer(
                storage.tokens, codec=token_codec(clock), clock=clock, ttl=600
            )
        },
        id_tokens=id_tokens(clock) if id_tokens else None,
    )
    return GrantWorld(
        storage,
        clock,
        voider,
        audit,
        signin,
        tokens,
        AuthorizationCodeGrant(signin),
        RefreshTokenGrant(signin),
    )


# --- The whole flow through the ASGI app, as a browser would post the forms ------------------


# --- through the app: the pages' forms, and the token endpoint ---------------------------

CODE_SCOPE = "restaurent restaurants:read"
"""The scope of the codes :func:`code_for` seeds."""


def authorize_params(app: App, challenge: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": app.redirect_uri,
        "scope": "openid",
        "state": "st-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "nonce": "n-1",
        **extra,
    }


def signin_http_params(app: App, challenge: str, **extra: str) -> dict[str, str]:
    """The authorize request of tests/e2e/test_signin_http.py: a scope beyond openid, and a
    state that needs encoding."""
    return {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": app.redirect_uri,
        "scope": "openid restaurants:read",
        "state": "st-1 &x=y",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "nonce": "n-42",
        **extra,
    }


async def browser_sign_in(
    http: httpx.AsyncClient,
    app: App,
    challenge: str,
    *,
    password: str = PASSWORD,
    **extra: str,
) -> httpx.Response:
    """Open the authorize URL, log in and allow when asked; the last response (the redirect
    to the app, or whatever page stopped the flow)."""
    response = await http.get("/oauth/authorize", params=authorize_params(app, challenge, **extra))
    for _ in range(3):
        location = response.headers.get("location", "")
        if response.status_code != 303 or not location.startswith("/signin/"):
            return response
        page = await http.get(location)
        form = read_form(page.text)
        if "/login" in location:
            data = {"username": USERNAME, "password": password}
        else:
            data = {"decision": "allow"}
        response = await http.post(
            form.actions[0], data={"csrf_token": form.fields["csrf_token"], **data}
        )
    return response


async def redeem(http: httpx.AsyncClient, app: App, location: str, verifier: str) -> dict[str, Any]:
    """Exchange the code in the callback ``location`` (a public client: client_id alone)."""
    response = await http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(location)["code"],
            "redirect_uri": app.redirect_uri,
            "client_id": app.client_id,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def tokens_for(
    http: httpx.AsyncClient, app: App, **extra: str
) -> tuple[httpx.Response, dict[str, Any]]:
    """Sign in and redeem: the callback response and the token response's body."""
    verifier, challenge = pkce_pair()
    landed = await browser_sign_in(http, app, challenge, **extra)
    assert landed.status_code == 303, landed.text
    assert landed.headers["location"].startswith(app.redirect_uri), landed.headers["location"]
    return landed, await redeem(http, app, landed.headers["location"], verifier)


async def authorize_page(http: httpx.AsyncClient, app: App, challenge: str, **extra: str) -> str:
    response = await http.get(
        "/oauth/authorize", params=signin_http_params(app, challenge, **extra)
    )
    assert response.status_code == 303, response.text
    return response.headers["location"]


async def login(
    http: httpx.AsyncClient, page_url: str, *, password: str = PASSWORD
) -> httpx.Response:
    page = await http.get(page_url)
    assert page.status_code == 200, page.text
    form = read_form(page.text)
    return await http.post(
        form.actions[0],
        data={
            "csrf_token": form.fields["csrf_token"],
            "username": USERNAME,
            "password": password,
        },
    )


async def consent(http: httpx.AsyncClient, page_url: str, decision: str) -> httpx.Response:
    page = await http.get(page_url)
    assert page.status_code == 200, page.text
    form = read_form(page.text)
    assert ("decision", "allow") in form.buttons
    assert ("decision", "deny") in form.buttons
    return await http.post(
        form.actions[0], data={"csrf_token": form.fields["csrf_token"], "decision": decision}
    )


async def full_flow(http: httpx.AsyncClient, app: App, challenge: str, **extra: str) -> str:
    logged_in = await login(http, await authorize_page(http, app, challenge, **extra))
    assert logged_in.status_code == 303
    consented = await consent(http, logged_in.headers["location"], "allow")
    assert consented.status_code == 303
    return consented.headers["location"]


def app_services_of(app: FastRouter) -> Services:
    return app.state.services  # type: ignore[no-any-return]


async def world(app: FastRouter, token_format: str = "jwt") -> str:
    """Clients and the user alice; returns the Basic credentials of a resource server that may
    introspect the API's tokens."""
    storage = app_services_of(app).storage
    await add_world(storage)
    if token_format == "opaque":
        await storage.clients.update(client=replace(public_client(), token_format="opaque"))
    created = await app_services_of(app).registry.create(
        client_id="rs", scopes=["x"], introspect=[app_services_of(app).settings.resource_id]
    )
    assert created.secret is not None
    return basic("rs", created.secret)


async def code_for(app: FastRouter, **fields: object) -> SeededCode:
    return await seed_code(
        app_services_of(app).storage,
        now=app_services_of(app).clock.now(),
        scope=str(fields.pop("scope", CODE_SCOPE)),
        **fields,  # type: ignore[arg-type]
    )


def exchange_form(seeded: SeededCode, client_id: str = PUBLIC_ID) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": seeded.code,
        "redirect_uri": REDIRECT,
        "code_verifier": seeded.verifier,
        "client_id": client_id,
    }


async def post_token(http: httpx.AsyncClient, form: dict[str, str]) -> httpx.Response:
    return await http.post("/oauth/token", data=form, headers=FORM)


async def refresh(http: httpx.AsyncClient, token: str, **extra: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": PUBLIC_ID}
    return await post_token(http, {**form, **extra})


# --- the account page's browser (tests of the account page and the admin console) ----------


@asynccontextmanager
async def browser_for(app: FastRouter) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"},
    ) as http:
        yield http


async def account_login(
    http: httpx.AsyncClient, *, username: str = USERNAME, password: str = PASSWORD
) -> httpx.Response:
    page = await http.get("/account/login")
    assert page.status_code == 200, page.text
    form = read_form(page.text)
    assert form.actions == ["/account/login"]
    return await http.post(
        "/account/login",
        data={"csrf_token": form.fields["csrf_token"], "username": username, "password": password},
    )
