"""The sign-in interaction: a validated authorize request stored server-side, resumed by the
login and consent pages, finished by minting a code (STYLE.md §13).

The core never renders HTML and the pages never mint codes: the web layer calls
:meth:`SignIn.resume` to find the interaction a page belongs to, :meth:`SignIn.logged_in`
after it checked the password, :meth:`SignIn.decided` with the consent decision; each answers
with the next step (a 303 to the next page, or the authorization response to the client).

1. The interaction id (a SplitToken) travels in the page URL; a second cookie, set when the
   interaction is created, binds it to the browser (the storage compares the SHA-256 of the
   cookie's nonce): an id copied into another browser is unknown there.
2. Every form carries a CSRF token, the HMAC-SHA256 of the interaction id under a server key,
   compared in constant time.
3. The browser session (a SplitToken in an ``HttpOnly``, ``SameSite=Lax`` cookie, ``Secure``
   and ``__Host-`` when the issuer is https) lives in the database, so it survives a restart.
4. Consent is remembered per user and client as a set of scopes; only new scopes are asked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import asdict, dataclass
from urllib.parse import urlencode

import orjson

from oauth_server.audit import NO_AUDIT, AuditRecorder
from oauth_server.clock import Clock
from oauth_server.crypto import new_split_token, new_token, parse_split_token
from oauth_server.errors import AccessDenied, AuthorizationError
from oauth_server.oauth.http import (
    CookieJar,
    OAuthRequest,
    OAuthResponse,
    RedirectTarget,
    ResponseMode,
    authorization_response,
    render_error,
)
from oauth_server.oauth.scopes import ADMIN_SCOPE
from oauth_server.oauth.tokens.format import TokenCodec
from oauth_server.observer import NO_OBSERVER, Observer
from oauth_server.storage.models import (
    MAX_USER_AGENT,
    AuthorizationCode,
    BrowserSession,
    Client,
    Interaction,
    InteractionLogin,
)
from oauth_server.storage.protocols import Storage

__all__ = [
    "BROWSER_COOKIE",
    "SESSION_COOKIE",
    "AuthorizeRequest",
    "LostInteraction",
    "Resumed",
    "SignIn",
    "consent_path",
    "login_path",
]

BROWSER_COOKIE = "oauth_browser"
SESSION_COOKIE = "oauth_session"
_INTERACTION_PREFIX = "/signin/"


def login_path(uid: str) -> str:
    return f"{_INTERACTION_PREFIX}{uid}/login"


def consent_path(uid: str) -> str:
    return f"{_INTERACTION_PREFIX}{uid}/consent"


@dataclass(frozen=True, slots=True)
class AuthorizeRequest:
    """An authorize request that passed every check of :mod:`.endpoints.authorize`."""

    client_id: str
    redirect_uri: str
    scope: tuple[str, ...]
    state: str | None = None
    response_mode: ResponseMode = "query"
    code_challenge: str = ""
    code_challenge_method: str = ""
    resource: str = ""
    nonce: str = ""
    prompt: tuple[str, ...] = ()
    max_age: int | None = None
    login_hint: str = ""
    hint_subject: str = ""
    """The user an ``id_token_hint`` names (OIDC Core §3.1.2.1): only that user continues."""

    def target(self, issuer: str) -> RedirectTarget:
        return RedirectTarget(self.redirect_uri, issuer, self.state, self.response_mode)

    def to_json(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> AuthorizeRequest:
        data = orjson.loads(text)
        data["scope"] = tuple(data["scope"])
        data["prompt"] = tuple(data["prompt"])
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Resumed:
    """An interaction a page found again: its id, the stored record, the request, the client."""

    uid: str
    interaction: Interaction
    request: AuthorizeRequest
    client: Client
    browser_hash: bytes

    @property
    def selector(self) -> bytes:
        return self.interaction.selector


class SignIn:
    def __init__(
        self,
        storage: Storage,
        *,
        issuer: str,
        clock: Clock,
        secret: bytes,
        codec: TokenCodec,
        code_ttl: int,
        session_ttl: int,
        interaction_ttl: int,
        audit: AuditRecorder = NO_AUDIT,
        observer: Observer = NO_OBSERVER,
    ) -> None:
        self._storage = storage
        self._issuer = issuer
        self._clock = clock
        self._csrf_key = hmac.new(secret, b"oauth-server signin csrf", hashlib.sha256).digest()
        self._codec = codec
        self._code_ttl = code_ttl
        self._session_ttl = session_ttl
        self._interaction_ttl = interaction_ttl
        self._audit = audit
        self._observer = observer
        self.cookies = CookieJar.for_issuer(issuer)

    @property
    def issuer(self) -> str:
        return self._issuer

    # --- CSRF -------------------------------------------------------------------------------

    def csrf_token(self, uid: str) -> str:
        mac = hmac.new(self._csrf_key, uid.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def csrf_ok(self, uid: str, presented: str | None) -> bool:
        if not presented:
            return False
        return hmac.compare_digest(self.csrf_token(uid).encode(), presented.encode("utf-8"))

    def browser_nonce(self, request: OAuthRequest) -> tuple[str, tuple[tuple[str, str], ...]]:
        """The nonce of this browser's binding cookie, and the ``Set-Cookie`` line to send when
        it had none (a new random one)."""
        nonce = self.cookies.read(request, BROWSER_COOKIE)
        if nonce is not None and len(nonce) == 43:
            return nonce, ()
        nonce = new_token()
        return nonce, (self.cookies.set(BROWSER_COOKIE, nonce, max_age=self._interaction_ttl),)

    # --- Sessions ---------------------------------------------------------------------------

    async def current_session(
        self, request: OAuthRequest, *, touch: bool = False
    ) -> BrowserSession | None:
        """The live session the request's cookie names; with ``touch``, its ``last_seen`` is
        set to now (shown on the account page)."""
        value = self.cookies.read(request, SESSION_COOKIE)
        parsed = parse_split_token(value) if value else None
        if parsed is None:
            return None
        selector, verifier_hash = parsed
        now = int(self._clock.now())
        session = await self._storage.sessions.get(
            selector=selector, verifier_hash=verifier_hash, now=now
        )
        if session is not None and touch:
            await self._storage.sessions.touch(session_id=session.session_id, now=now)
        return session

    # --- Starting ---------------------------------------------------------------------------

    async def start(
        self, request: OAuthRequest, areq: AuthorizeRequest, client: Client
    ) -> OAuthResponse:
        """The next step for a fresh, valid authorize request (OIDC Core §3.1.2.3)."""
        session = await self.current_session(request)
        now = int(self._clock.now())
        target = areq.target(self._issuer)
        if session is not None and not self._must_log_in(areq, session, now):
            # "Last seen" on the account page: this browser used its session just now.
            await self._storage.sessions.touch(session_id=session.session_id, now=now)
            missing = await self._consent_missing(areq, client, session.user_id)
            if not missing:
                return await self._issue_code(
                    areq, session.user_id, session.session_id, session.auth_time
                )
            if "none" in areq.prompt:
                # OIDC Core §3.1.2.6: consent needed but no page may be shown.
                return render_error(AuthorizationError(error="consent_required"), target)
            return await self._create_interaction(request, areq, client, session, consent=True)
        if "none" in areq.prompt:
            return render_error(AuthorizationError(error="login_required"), target)
        return await self._create_interaction(request, areq, client, None, consent=False)

    @staticmethod
    def _must_log_in(areq: AuthorizeRequest, session: BrowserSession, now: int) -> bool:
        if "login" in areq.prompt:
            return True
        if areq.hint_subject and areq.hint_subject != session.user_id:
            return True  # OIDC Core §3.1.2.1: the hint names someone else
        # OIDC Core §3.1.2.1: max_age — re-authenticate when the last login is older.
        return areq.max_age is not None and now - session.auth_time > areq.max_age

    async def _consent_missing(
        self, areq: AuthorizeRequest, client: Client, user_id: str
    ) -> tuple[str, ...]:
        """The requested scopes the user has not granted this client yet (all of them with
        ``prompt=consent``); none for a client that needs no consent."""
        if not client.require_consent:
            return ()
        if "consent" in areq.prompt:
            return areq.scope
        consent = await self._storage.consents.get(user_id=user_id, client_id=client.client_id)
        granted = consent.scopes if consent else frozenset()
        return tuple(scope for scope in areq.scope if scope not in granted)

    async def _create_interaction(
        self,
        request: OAuthRequest,
        areq: AuthorizeRequest,
        client: Client,
        session: BrowserSession | None,
        *,
        consent: bool,
    ) -> OAuthResponse:
        now = self._clock.now()
        handle = new_split_token(now)
        nonce, set_cookie = self.browser_nonce(request)
        await self._storage.interactions.create(
            interaction=Interaction(
                selector=handle.selector,
                verifier_hash=handle.verifier_hash,
                browser_hash=hashlib.sha256(nonce.encode()).digest(),
                client_id=client.client_id,
                params=areq.to_json(),
                created_at=int(now),
                expires_at=int(now) + self._interaction_ttl,
            )
        )
        if session is not None:
            await self._storage.interactions.update(
                selector=handle.selector,
                now=int(now),
                login=InteractionLogin(
                    user_id=session.user_id,
                    auth_time=session.auth_time,
                    session_id=session.session_id,
                    amr=session.amr,
                ),
            )
        path = consent_path(handle.value) if consent else login_path(handle.value)
        return OAuthResponse.redirect(self._page_url(path, areq), headers=set_cookie)

    def _page_url(self, path: str, areq: AuthorizeRequest) -> str:
        # The client and redirect URI ride along so that a lost interaction's page can still
        # offer a way back to the app (the page re-checks both against the registration).
        query = urlencode({"client_id": areq.client_id, "redirect_uri": areq.redirect_uri})
        return f"{path}?{query}"

    # --- Resuming ---------------------------------------------------------------------------

    async def resume(
        self, request: OAuthRequest, uid: str, client: Client | None
    ) -> Resumed | None:
        """The live interaction ``uid`` of this browser, or ``None`` (unknown, expired,
        completed, other browser)."""
        parsed = parse_split_token(uid)
        nonce = self.cookies.read(request, BROWSER_COOKIE)
        if parsed is None or not nonce or client is None:
            return None
        browser_hash = hashlib.sha256(nonce.encode()).digest()
        interaction = await self._storage.interactions.get(
            selector=parsed[0],
            verifier_hash=parsed[1],
            browser_hash=browser_hash,
            now=int(self._clock.now()),
        )
        if interaction is None or interaction.client_id != client.client_id:
            return None
        return Resumed(
            uid, interaction, AuthorizeRequest.from_json(interaction.params), client, browser_hash
        )

    async def start_session(
        self, user_id: str, *, user_agent: str = "", address: str = ""
    ) -> tuple[BrowserSession, tuple[str, str]]:
        """A new browser session for a user whose password was just checked, and the
        ``Set-Cookie`` line that hands it to the browser. ``user_agent`` and ``address`` are
        kept only to be shown on the account page."""
        now = int(self._clock.now())
        handle = new_split_token(now)
        session = BrowserSession(
            selector=handle.selector,
            verifier_hash=handle.verifier_hash,
            session_id=new_token(16),
            user_id=user_id,
            auth_time=now,
            created_at=now,
            last_seen=now,
            expires_at=now + self._session_ttl,
            amr=("pwd",),
            user_agent=user_agent[:MAX_USER_AGENT],
            address=address,
        )
        await self._storage.sessions.create(session=session)
        return session, self.cookies.set(SESSION_COOKIE, handle.value, max_age=self._session_ttl)

    def end_session_cookie(self) -> tuple[str, str]:
        """The ``Set-Cookie`` line that removes the session cookie from the browser."""
        return self.cookies.delete(SESSION_COOKIE)

    async def logged_in(
        self, resumed: Resumed, user_id: str, *, user_agent: str = "", address: str = ""
    ) -> OAuthResponse:
        """The password was right: start a browser session, then consent or the code."""
        now = int(self._clock.now())
        session, cookie = await self.start_session(user_id, user_agent=user_agent, address=address)
        updated = await self._storage.interactions.update(
            selector=resumed.selector,
            now=now,
            login=InteractionLogin(
                user_id=user_id, auth_time=now, session_id=session.session_id, amr=("pwd",)
            ),
        )
        if updated is None:
            raise LostInteraction(resumed.client, resumed.request.redirect_uri)
        missing = await self._consent_missing(resumed.request, resumed.client, user_id)
        if missing:
            path = self._page_url(consent_path(resumed.uid), resumed.request)
            return OAuthResponse.redirect(path).with_headers(cookie)
        response = await self._finish(resumed, user_id, session.session_id, now)
        return response.with_headers(cookie)

    async def scopes_to_ask(self, resumed: Resumed) -> tuple[str, ...]:
        user_id = resumed.interaction.user_id
        if user_id is None:
            return ()
        return await self._consent_missing(resumed.request, resumed.client, user_id)

    async def decided(self, resumed: Resumed, *, allow: bool) -> OAuthResponse:
        """The consent page's answer (RFC 6749 §4.1.2.1 ``access_denied`` on deny)."""
        interaction = resumed.interaction
        assert interaction.user_id is not None
        assert interaction.auth_time is not None
        areq = resumed.request
        now = int(self._clock.now())
        if not allow:
            self._audit.record(
                "consent_denied", user_id=interaction.user_id, client_id=areq.client_id
            )
            self._observer.authorization("denied")
            await self._storage.interactions.complete(
                selector=interaction.selector,
                verifier_hash=interaction.verifier_hash,
                browser_hash=resumed.browser_hash,
                now=now,
            )
            return render_error(
                AccessDenied("the user denied the request"), areq.target(self._issuer)
            )
        await self._storage.consents.grant(
            user_id=interaction.user_id, client_id=areq.client_id, scopes=areq.scope, now=now
        )
        self._audit.record(
            "consent_granted",
            user_id=interaction.user_id,
            client_id=areq.client_id,
            scope=" ".join(areq.scope),
        )
        return await self._finish(
            resumed, interaction.user_id, interaction.session_id or "", interaction.auth_time
        )

    async def _finish(
        self, resumed: Resumed, user_id: str, session_id: str, auth_time: int
    ) -> OAuthResponse:
        interaction = resumed.interaction
        done = await self._storage.interactions.complete(
            selector=interaction.selector,
            verifier_hash=interaction.verifier_hash,
            browser_hash=resumed.browser_hash,
            now=int(self._clock.now()),
        )
        if done is None:  # completed by a concurrent submit, or expired meanwhile
            raise LostInteraction(resumed.client, resumed.request.redirect_uri)
        return await self._issue_code(resumed.request, user_id, session_id, auth_time)

    async def _issue_code(
        self, areq: AuthorizeRequest, user_id: str, session_id: str, auth_time: int
    ) -> OAuthResponse:
        """RFC 6749 §4.1.2: a single-use code of 256 bits, stored hashed, bound to everything
        the token request must match."""
        now = self._clock.now()
        handle = self._codec.mint("authorization_code", now)
        scope = await self._scope_for_user(areq.scope, user_id)
        await self._storage.codes.add(
            code=AuthorizationCode(
                selector=handle.selector,
                verifier_hash=handle.verifier_hash,
                client_id=areq.client_id,
                redirect_uri=areq.redirect_uri,
                user_id=user_id,
                scope=" ".join(scope),
                issued_at=int(now),
                expires_at=int(now) + self._code_ttl,
                code_challenge=areq.code_challenge,
                code_challenge_method=areq.code_challenge_method,
                resource=areq.resource,
                nonce=areq.nonce,
                session_id=session_id,
                auth_time=auth_time,
            )
        )
        self._observer.authorization("approved")
        return authorization_response(areq.target(self._issuer), {"code": handle.value})

    async def _scope_for_user(self, scope: tuple[str, ...], user_id: str) -> tuple[str, ...]:
        """The requested scope less what this user may not grant: ``admin`` only for an admin
        user. RFC 6749 §3.3: the server "MAY fully or partially ignore the scope requested by
        the client, based on the authorization server policy"; the token response then names
        the scope issued (§5.1)."""
        if ADMIN_SCOPE not in scope:
            return scope
        user = await self._storage.users.get(user_id=user_id)
        if user is not None and user.is_admin:
            return scope
        return tuple(s for s in scope if s != ADMIN_SCOPE)


class LostInteraction(Exception):
    """The interaction is gone (expired, completed, another browser): the web layer shows the
    "sign-in expired or lost" page, with a way back to the app when ``client`` is known."""

    def __init__(self, client: Client | None, redirect_uri: str | None) -> None:
        super().__init__("the sign-in interaction is gone")
        self.client = client
        self.redirect_uri = redirect_uri
