"""The end-session endpoint: OpenID Connect RP-Initiated Logout 1.0 (GET and POST
``/oauth/logout``). The core decides; the web layer (``web/routes/logout.py``) renders the
confirmation and signed-out pages.

Steps, in the order §2 and §3 give them:

1. ``read_params``: the query (GET) or the form body (POST) — §2: "The OP MUST support the
   use of the HTTP GET and POST methods"; empty values are absent, repeated ones refused.
2. ``identify_client``: ``id_token_hint`` must be an ID token this server issued (§2: "the OP
   MUST validate that it was the issuer of the ID Token"), signature and ``iss`` checked, an
   expired one accepted (§2: the OP "SHOULD accept ID Tokens … even when the exp time has
   passed"); with ``client_id`` too, its ``aud`` must name that client (§2: "the OP MUST
   verify that the Client Identifier matches the one used when issuing the ID Token").
3. ``check_redirect``: a ``post_logout_redirect_uri`` needs a client named by the hint or by
   ``client_id`` and must equal one of that client's registered ``post_logout_redirect_uris``
   character for character (§3: the OP "MUST NOT perform post-logout redirection if the
   post_logout_redirect_uri value supplied does not exactly match one of the previously
   registered post_logout_redirect_uris values", nor without an ``id_token_hint`` "unless the
   OP has other means of confirming the legitimacy" — here the ``client_id`` and the exact
   registered match). Any failure is :class:`LogoutRefused`: an error page, never a redirect.
4. ``decide``: the user is signed out at once only when the request proves it comes from the
   RP of the current session: a valid ``id_token_hint`` whose ``sid`` and ``sub`` are the
   browser session's (and a ``logout_hint``, if sent, names the same user). Otherwise the
   confirmation page is shown (§2: the OP "MUST ask the End-User this question if an
   id_token_hint was not provided or if the supplied ID Token does not belong to the current
   OP session"), with a POST form whose CSRF token is the HMAC of a nonce held in a cookie, so
   no other site can sign anyone out. A POST from the RP is a cross-site request, which does
   not carry the ``SameSite=Lax`` session cookie: without a session in sight, a POST is also
   asked to confirm (the confirmation's own POST is same-site and carries it).
5. ``log_out``: end the browser session, revoke the refresh tokens that continue it unless
   they were granted ``offline_access`` (OIDC Core §11: offline access is access "even when
   the End-User is not logged in"; every other refresh token is part of the session), clear
   the cookie, audit ``logout``; then a 303 to ``post_logout_redirect_uri`` with ``state``
   (§2: "the OP passes this value back to the RP using the state parameter"), or the
   signed-out page. A logout with no session is not an error (§4 calls logout requests
   idempotent).

``ui_locales`` is accepted and ignored: the pages are in English, and §2 says "An error SHOULD
NOT result if some or all of the requested locales are not supported by the OP".
``logout_hint`` is left to the OP (§2); here it is compared with the signed-in username.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from oauth_server.audit import NO_AUDIT, AuditRecorder
from oauth_server.clock import Clock
from oauth_server.crypto import new_token
from oauth_server.errors import InvalidRequest, LogoutRefused
from oauth_server.oauth.clients import ClientDirectory
from oauth_server.oauth.endpoints.metadata import END_SESSION_PATH
from oauth_server.oauth.http import OAuthRequest, OAuthResponse
from oauth_server.oauth.interaction import SESSION_COOKIE, SignIn
from oauth_server.oauth.params import MAX_PARAM_LENGTH, MAX_PARAMS, is_client_id, split_urlencoded
from oauth_server.oauth.tokens.id_token import IdTokenHint, IdTokenVerifier
from oauth_server.oauth.tokens.voided import IssuedTokenVoider
from oauth_server.storage.models import BrowserSession, Client
from oauth_server.storage.protocols import Storage

__all__ = [
    "END_SESSION_PATH",
    "LOGOUT_COOKIE",
    "LOGOUT_PARAMS",
    "SURVIVES_LOGOUT",
    "ConfirmLogout",
    "EndSession",
    "LoggedOut",
    "LogoutRequest",
]

LOGOUT_COOKIE = "oauth_logout"
LOGOUT_PARAMS = (
    "id_token_hint",
    "logout_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
    "ui_locales",
)
"""The request parameters of §2; the confirmation form carries them on."""
SURVIVES_LOGOUT = "offline_access"
"""The scope whose refresh tokens outlive the browser session (OIDC Core §11)."""
_CONFIRM_TTL = 600
_FORM_FIELDS = frozenset({"csrf_token", "decision"})


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    """A logout request that passed steps 1-3."""

    params: Mapping[str, str]
    """The §2 parameters as sent (for the confirmation form)."""
    client: Client | None
    hint: IdTokenHint | None
    post_logout_redirect_uri: str | None
    state: str | None
    logout_hint: str

    @property
    def client_name(self) -> str:
        if self.client is None:
            return ""
        return self.client.name or self.client.client_id


@dataclass(frozen=True, slots=True)
class ConfirmLogout:
    """Ask the user: the page posts ``fields`` back with ``csrf_token`` and a ``decision``
    of ``logout`` or ``stay``; ``headers`` set the nonce cookie the token is bound to."""

    request: LogoutRequest
    csrf_token: str
    fields: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    signed_in: bool


@dataclass(frozen=True, slots=True)
class LoggedOut:
    """Done: ``response`` is the redirect to the RP, or ``None`` for the signed-out page (the
    web layer adds ``headers``, which clear the cookies, to either). ``ended``: whether a
    session was ended (``False`` when the user chose to stay, or had no session)."""

    request: LogoutRequest
    response: OAuthResponse | None
    headers: tuple[tuple[str, str], ...]
    ended: bool
    stayed: bool = False


class EndSession:
    def __init__(
        self,
        storage: Storage,
        *,
        clients: ClientDirectory,
        signin: SignIn,
        hints: IdTokenVerifier,
        voider: IssuedTokenVoider,
        clock: Clock,
        secret: bytes,
        audit: AuditRecorder = NO_AUDIT,
    ) -> None:
        self._storage = storage
        self._clients = clients
        self._signin = signin
        self._hints = hints
        self._voider = voider
        self._clock = clock
        self._csrf_key = hmac.new(secret, b"oauth-server logout csrf", hashlib.sha256).digest()
        self._audit = audit
        self._cookies = signin.cookies

    async def handle(self, request: OAuthRequest) -> ConfirmLogout | LoggedOut:
        """A logout request from an RP (or a person typing the URL)."""
        params = self.read_params(request)
        if _FORM_FIELDS & params.keys():
            return await self.confirmed(request, params)
        lreq = await self.validate(params)
        session = await self._signin.current_session(request)
        if session is None and request.method == "GET":
            # Nothing to end (a GET navigation carries the Lax session cookie): §4, not an error.
            return self._done(lreq, ended=False)
        if session is not None and await self.proves_rp(lreq, session):
            return await self.log_out(request, lreq, session, reason="id_token_hint")
        return self._confirm(lreq, signed_in=session is not None)

    async def confirmed(self, request: OAuthRequest, params: Mapping[str, str]) -> LoggedOut:
        """The confirmation form's POST: the CSRF token must match the nonce cookie."""
        if request.method != "POST" or not self._csrf_ok(request, params.get("csrf_token")):
            raise LogoutRefused("the sign-out form was not sent by this server's page")
        decision = params.get("decision")
        if decision not in ("logout", "stay"):
            raise LogoutRefused("choose to sign out or to stay signed in")
        lreq = await self.validate({k: v for k, v in params.items() if k in LOGOUT_PARAMS})
        if decision == "stay":
            return self._done(lreq, ended=False, stayed=True)
        session = await self._signin.current_session(request)
        return await self.log_out(request, lreq, session, reason="confirmed")

    # --- 1. Parameters -----------------------------------------------------------------------

    @staticmethod
    def read_params(request: OAuthRequest) -> dict[str, str]:
        if request.method == "POST":
            if request.content_type != "application/x-www-form-urlencoded":
                raise LogoutRefused("the logout request body must be a form")
            try:
                raw = list(split_urlencoded(request.body.decode("utf-8")))
            except (UnicodeDecodeError, InvalidRequest):
                raise LogoutRefused("the logout request body is not a valid form") from None
        else:
            raw = list(request.query)
        if len(raw) > MAX_PARAMS:
            raise LogoutRefused("too many parameters")
        params: dict[str, str] = {}
        for name, value in raw:
            if len(value) > MAX_PARAM_LENGTH:
                raise LogoutRefused(f"parameter {name[:32]!r} is too long")
            if not value:  # absent, as at the other endpoints (OAuth 2.1 §3.1)
                continue
            if name in params:
                raise LogoutRefused(f"parameter {name[:32]!r} must not be repeated")
            params[name] = value
        return params

    # --- 2-3. Client and redirect ------------------------------------------------------------

    async def validate(self, params: Mapping[str, str]) -> LogoutRequest:
        hint, client = await self.identify_client(params)
        redirect_uri = self.check_redirect(params.get("post_logout_redirect_uri"), client)
        return LogoutRequest(
            params={k: v for k, v in params.items() if k in LOGOUT_PARAMS},
            client=client,
            hint=hint,
            post_logout_redirect_uri=redirect_uri,
            # §2: state goes back with the redirect; without one there is nowhere to send it.
            state=params.get("state") if redirect_uri is not None else None,
            logout_hint=params.get("logout_hint", "")[:256],
        )

    async def identify_client(
        self, params: Mapping[str, str]
    ) -> tuple[IdTokenHint | None, Client | None]:
        client_id = params.get("client_id")
        if client_id is not None and not is_client_id(client_id):
            raise LogoutRefused("the client_id is malformed")
        hint = None
        token = params.get("id_token_hint")
        if token is not None:
            try:
                hint = await self._hints.verify_hint(token, client_id)
            except InvalidRequest as exc:  # forged, another issuer's, another client's
                raise LogoutRefused(exc.description) from None
            if client_id is None:
                # Our ID tokens name the client first (and as azp when there are more).
                client_id = hint.audience[0]
        if client_id is None:
            return hint, None
        client = await self._clients.get(client_id)
        if client is None:
            raise LogoutRefused("unknown client")
        return hint, client

    @staticmethod
    def check_redirect(presented: str | None, client: Client | None) -> str | None:
        if presented is None:
            return None
        if client is None:
            raise LogoutRefused(
                "post_logout_redirect_uri needs an id_token_hint or a client_id naming the client"
            )
        # §3: exact match, no normalisation, no loopback port relaxation.
        if not any(hmac.compare_digest(presented, uri) for uri in client.post_logout_redirect_uris):
            raise LogoutRefused("the post_logout_redirect_uri is not registered for this client")
        return presented

    # --- 4. Proof or confirmation ------------------------------------------------------------

    async def proves_rp(self, lreq: LogoutRequest, session: BrowserSession) -> bool:
        hint = lreq.hint
        if hint is None or hint.session_id is None:
            return False
        if not hmac.compare_digest(hint.session_id, session.session_id):
            return False
        if hint.subject != session.user_id:
            return False
        if lreq.logout_hint:
            user = await self._storage.users.get(user_id=session.user_id)
            named = {session.user_id, user.username.lower() if user else ""}
            if lreq.logout_hint.lower() not in named:
                return False
        return True

    def _confirm(self, lreq: LogoutRequest, *, signed_in: bool) -> ConfirmLogout:
        nonce = new_token()
        cookie = self._cookies.set(LOGOUT_COOKIE, nonce, max_age=_CONFIRM_TTL)
        return ConfirmLogout(
            request=lreq,
            csrf_token=self._csrf_token(nonce),
            fields=tuple(lreq.params.items()),
            headers=(cookie,),
            signed_in=signed_in,
        )

    def _csrf_token(self, nonce: str) -> str:
        mac = hmac.new(self._csrf_key, nonce.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def _csrf_ok(self, request: OAuthRequest, presented: str | None) -> bool:
        nonce = self._cookies.read(request, LOGOUT_COOKIE)
        if not nonce or not presented or not nonce.isascii():
            return False
        return hmac.compare_digest(self._csrf_token(nonce).encode(), presented.encode("utf-8"))

    # --- 5. Logging out ----------------------------------------------------------------------

    async def log_out(
        self,
        request: OAuthRequest,
        lreq: LogoutRequest,
        session: BrowserSession | None,
        *,
        reason: str,
    ) -> LoggedOut:
        if session is None:
            return self._done(lreq, ended=False)
        now = int(self._clock.now())
        ended = await self._storage.sessions.end(session_id=session.session_id, now=now)
        revocation = await self._storage.refresh_tokens.revoke_for_session(
            session_id=session.session_id, now=now, keep_scope=SURVIVES_LOGOUT
        )
        self._voider.voided(revocation.access_tokens)
        self._audit.record(
            "logout",
            user_id=session.user_id,
            client_id=lreq.client.client_id if lreq.client else "",
            reason=reason,
            count=len(revocation.family_ids),
            ip=request.client_ip,
        )
        return self._done(lreq, ended=ended)

    def _done(self, lreq: LogoutRequest, *, ended: bool, stayed: bool = False) -> LoggedOut:
        headers = [self._cookies.delete(LOGOUT_COOKIE)]
        if not stayed:
            headers.append(self._cookies.delete(SESSION_COOKIE))
        response = None
        if lreq.post_logout_redirect_uri is not None:
            response = OAuthResponse.redirect(
                _with_state(lreq.post_logout_redirect_uri, lreq.state)
            )
        return LoggedOut(lreq, response, tuple(headers), ended=ended, stayed=stayed)


def _with_state(uri: str, state: str | None) -> str:
    if state is None:
        return uri
    # The registered URI's own query is kept (as RFC 6749 §3.1.2 asks of redirect URIs).
    separator = "&" if urlsplit(uri).query else ("" if uri.endswith("?") else "?")
    return uri + separator + urlencode({"state": state})
