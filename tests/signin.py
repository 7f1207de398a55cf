"""Helpers for sign-in tests: PKCE pairs, reading the pages' forms, registering a test app."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

from oauth_server.crypto import parse_split_token
from oauth_server.services import Services
from oauth_server.storage.models import CodeRedemption

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


async def register_app(
    services: Services,
    *,
    name: str = "Menu Planner",
    require_consent: bool = True,
    redirect_uris: tuple[str, ...] = (REDIRECT_URI,),
    client_type: str = "public",
    require_pkce: bool = True,
) -> App:
    new = await services.registry.create(
        name=name,
        grant_types=("authorization_code", "refresh_token"),
        scopes=("openid", "profile", "email", "restaurants:read"),
        default_scopes=("openid",),
        client_type=client_type,  # type: ignore[arg-type]
        redirect_uris=redirect_uris,
        require_consent=require_consent,
        require_pkce=require_pkce,
    )
    return App(new.client.client_id, redirect_uris[0])


async def ensure_user(services: Services) -> str:
    user = await services.accounts.find(USERNAME)
    if user is None:
        user = await services.accounts.create(USERNAME, PASSWORD, name="Alice Example")
    return user.user_id


async def consume_code(services: Services, code: str) -> CodeRedemption | None:
    parsed = parse_split_token(code)
    assert parsed is not None
    return await services.storage.codes.consume(
        selector=parsed[0], verifier_hash=parsed[1], now=int(services.clock.now())
    )
