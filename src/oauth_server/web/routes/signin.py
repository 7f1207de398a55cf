"""The authorization endpoint and the sign-in pages: thin adapters around
:class:`~oauth_server.oauth.endpoints.authorize.AuthorizationEndpoint` and
:class:`~oauth_server.oauth.interaction.SignIn`.

Form contract (README "Sign in"): the login form posts ``username``, ``password`` and
``csrf_token``; the consent form posts ``csrf_token`` and a ``decision`` of ``allow`` or
``deny``. Every POST is answered with 303 (RFC 9700 §4.12: never 307).
"""

from __future__ import annotations

from dataclasses import dataclass

from oauth_server.accounts import AuthenticationFailed
from oauth_server.audit import AuditFields
from oauth_server.errors import AuthorizationError, InvalidRequest, NotFound, TooManyRequests
from oauth_server.oauth.endpoints.authorize import resolve_redirect_uri
from oauth_server.oauth.http import OAuthRequest, OAuthResponse
from oauth_server.oauth.interaction import (
    LostInteraction,
    Resumed,
    consent_path,
    login_path,
)
from oauth_server.oauth.params import parse_form, parse_query
from oauth_server.storage.models import Client, User
from oauth_server.web.api import Api, Call, Doc
from oauth_server.web.pages import (
    SCOPE_WORDS,
    STYLESHEET_PATH,
    Pages,
    back_to_app_url,
    stylesheet_response,
)

__all__ = ["WRONG_CREDENTIALS", "LoginRefused", "check_login", "register"]

WRONG_CREDENTIALS = "Wrong username or password"
TOO_MANY_ATTEMPTS = "Too many failed attempts. Wait a minute, then try again."
_PAGES = Pages()
_LOST_DESCRIPTION = "The sign-in expired or was lost; please try again"


async def _client_of(call: Call) -> tuple[Client | None, str | None]:
    """The client and redirect URI named in the page URL, if they check out."""
    try:
        query = parse_query(call.request.query)
    except InvalidRequest:
        return None, None
    client_id = query.get("client_id")
    client = await call.services.clients.get(client_id) if client_id else None
    if client is None:
        return None, None
    try:
        return client, resolve_redirect_uri(client, query.get("redirect_uri"))
    except AuthorizationError:
        return client, None


def lost_page(client: Client | None, redirect_uri: str | None, issuer: str) -> OAuthResponse:
    """A lost or expired interaction, said in plain words; a way back to the app when the
    client and its redirect URI are known (the app gets ``access_denied``)."""
    back = None
    if client is not None and redirect_uri is not None:
        back = back_to_app_url(redirect_uri, issuer, _LOST_DESCRIPTION)
    return _PAGES.error(
        status=400,
        heading="This sign-in has expired",
        message=(
            "The sign-in page was open too long, was opened in another browser, or was "
            "already used, so it cannot continue. Nothing was shared with the app."
        ),
        description=(
            f"Go back to {client.name or client.client_id} and start signing in again."
            if client is not None
            else "Go back to the app you came from and start signing in again."
        ),
        back_url=back,
        client_name=(client.name or client.client_id) if client else "",
    )


def authorize_error_page(exc: AuthorizationError) -> OAuthResponse:
    return _PAGES.error(
        status=400,
        heading="This sign-in request cannot be completed",
        message=(
            "The app that sent you here made a request this server cannot accept, so you "
            "were not sent back to it. Please tell the app's developers."
        ),
        description=exc.description,
        code=exc.error,
    )


async def _resume(call: Call) -> tuple[Resumed | None, OAuthResponse | None]:
    client, redirect_uri = await _client_of(call)
    signin = call.services.signin
    resumed = await signin.resume(call.request, call.path_params["uid"], client)
    if resumed is None:
        return None, lost_page(client, redirect_uri, signin.issuer)
    return resumed, None


def _login_form(
    call: Call, resumed: Resumed, *, status: int = 200, error: str | None = None, username: str = ""
) -> OAuthResponse:
    areq = resumed.request
    signin = call.services.signin
    return _PAGES.render(
        "login.html",
        status=status,
        redirect_uri=areq.redirect_uri,
        title="Sign in",
        client_name=resumed.client.name or resumed.client.client_id,
        action=_action(login_path(resumed.uid), call.request),
        csrf_token=signin.csrf_token(resumed.uid),
        username=username or areq.login_hint,
        error=error,
        # A plain link, like the deny button without the consent: the app learns the user
        # went back (form_post apps get it in the query too, RFC 6749 §4.1.2.1 style).
        cancel_url=back_to_app_url(
            areq.redirect_uri, signin.issuer, "The user cancelled the sign-in", areq.state
        ),
    )


def _action(path: str, request: OAuthRequest) -> str:
    return f"{path}?{request.query_string}" if request.query_string else path


def _csrf_refused() -> OAuthResponse:
    return _PAGES.error(
        status=403,
        heading="This form cannot be accepted",
        message=(
            "The form was not sent by this sign-in page (its security token is missing or "
            "wrong). Go back to the app and start signing in again."
        ),
        code="invalid_request",
    )


def _form(request: OAuthRequest) -> dict[str, str] | None:
    if request.content_type != "application/x-www-form-urlencoded":
        return None
    try:
        return parse_form(request.body)
    except InvalidRequest:
        return None


@dataclass(frozen=True, slots=True)
class LoginRefused:
    """A login the form must show again: 400 with the one failure message, or 429 once a
    throttling budget is spent (``Retry-After`` in ``headers``)."""

    status: int
    error: str
    headers: tuple[tuple[str, str], ...] = ()


async def check_login(
    call: Call, username: str, password: str, *, client_id: str | None = None
) -> User | LoginRefused:
    """The user whose password this is, or how to refuse — the same for every login form:
    throttled per username (known or not) and per address before any hash is spent, one
    message for every failure, each failure counted and audited with its private reason.
    ``client_id`` names the app signed in to (``None``: the account page)."""
    services = call.services
    address = call.request.client_ip
    limiter = services.limiter
    key = username.strip().lower()
    try:
        if limiter is not None:
            await limiter.before_login(key, address)
    except TooManyRequests as exc:
        # The same page whether or not the account exists.
        return LoginRefused(429, TOO_MANY_ATTEMPTS, (("Retry-After", str(exc.retry_after)),))
    where: AuditFields = {"ip": address}
    if client_id is not None:
        where["client_id"] = client_id
    else:
        where["endpoint"] = call.request.path
    try:
        user = await services.accounts.authenticate(username, password)
    except AuthenticationFailed as failure:
        # The reason is private: the page says the same for every reason.
        where["reason"] = failure.reason
        where["user_id"] = failure.user_id or ""
        services.audit.record("login_failed", **where)
        services.observer.authorization("login_failed")
        if limiter is not None:
            await limiter.login_failed(key, address)
        return LoginRefused(400, WRONG_CREDENTIALS)
    call.request.notes.user_id = user.user_id
    where["user_id"] = user.user_id
    where["username"] = user.username
    services.audit.record("login_succeeded", **where)
    return user


def register(api: Api) -> None:
    doc = Doc(
        summary="Authorization endpoint (RFC 6749 §3.1, OAuth 2.1 §4.1.1)",
        tags=["sign-in"],
        description=(
            "Starts a sign-in: `response_type=code`, PKCE S256, `response_mode` `query` or "
            "`form_post`. Errors about the client or the redirect URI are an HTML page (400); "
            "every other answer goes to the redirect URI with `state` and `iss` (RFC 9207)."
        ),
        responses={
            200: ("A form_post response page", None),
            303: ("To the login or consent page, or to the client", None),
            400: ("HTML error page: unknown client, missing or unregistered redirect URI", None),
        },
    )

    async def authorize(call: Call) -> OAuthResponse:
        try:
            return await call.services.authorize.handle(call.request)
        except AuthorizationError as exc:  # about the client or its redirect URI: a page
            return authorize_error_page(exc)

    api.route("/oauth/authorize", methods=["GET", "POST"], doc=doc)(authorize)

    @api.route("/signin/{uid}/login", methods=["GET"])
    async def login_page(call: Call) -> OAuthResponse:
        resumed, lost = await _resume(call)
        if resumed is None:
            assert lost is not None
            return lost
        return _login_form(call, resumed)

    @api.route("/signin/{uid}/login", methods=["POST"])
    async def login_submit(call: Call) -> OAuthResponse:
        resumed, lost = await _resume(call)
        if resumed is None:
            assert lost is not None
            return lost
        services = call.services
        form = _form(call.request)
        if form is None or not services.signin.csrf_ok(resumed.uid, form.get("csrf_token")):
            return _csrf_refused()
        username = form.get("username", "")[:256]
        outcome = await check_login(
            call, username, form.get("password", ""), client_id=resumed.client.client_id
        )
        if isinstance(outcome, LoginRefused):
            page = _login_form(
                call, resumed, status=outcome.status, username=username, error=outcome.error
            )
            return page.with_headers(*outcome.headers)
        user = outcome
        address = call.request.client_ip
        try:
            return await services.signin.logged_in(
                resumed,
                user.user_id,
                user_agent=call.request.headers.get("user-agent", ""),
                address=address,
            )
        except LostInteraction as exc:
            return lost_page(exc.client, exc.redirect_uri, services.signin.issuer)

    @api.route("/signin/{uid}/consent", methods=["GET"])
    async def consent_page(call: Call) -> OAuthResponse:
        resumed, lost = await _resume(call)
        if resumed is None:
            assert lost is not None
            return lost
        if resumed.interaction.user_id is None:
            return OAuthResponse.redirect(_action(login_path(resumed.uid), call.request))
        services = call.services
        user = await services.accounts.get(resumed.interaction.user_id)
        scopes = await services.signin.scopes_to_ask(resumed) or resumed.request.scope
        return _PAGES.render(
            "consent.html",
            redirect_uri=resumed.request.redirect_uri,
            title="Allow access",
            client_name=resumed.client.name or resumed.client.client_id,
            scopes=[
                {"name": scope, "words": SCOPE_WORDS.get(scope, f"Use “{scope}”")}
                for scope in scopes
            ],
            username=user.username if user else "",
            action=_action(consent_path(resumed.uid), call.request),
            csrf_token=services.signin.csrf_token(resumed.uid),
        )

    @api.route("/signin/{uid}/consent", methods=["POST"])
    async def consent_submit(call: Call) -> OAuthResponse:
        resumed, lost = await _resume(call)
        if resumed is None:
            assert lost is not None
            return lost
        services = call.services
        form = _form(call.request)
        if form is None or not services.signin.csrf_ok(resumed.uid, form.get("csrf_token")):
            return _csrf_refused()
        if resumed.interaction.user_id is None:
            return OAuthResponse.redirect(_action(login_path(resumed.uid), call.request))
        decision = form.get("decision")
        if decision not in ("allow", "deny"):
            return _PAGES.error(
                status=400,
                heading="This form cannot be accepted",
                message="Choose Allow or Deny.",
                code="invalid_request",
            )
        try:
            return await services.signin.decided(resumed, allow=decision == "allow")
        except LostInteraction as exc:
            return lost_page(exc.client, exc.redirect_uri, services.signin.issuer)

    @api.route("/static/{name}", methods=["GET"])
    async def static(call: Call) -> OAuthResponse:
        if f"/static/{call.path_params['name']}" != STYLESHEET_PATH:
            raise NotFound("no such file")
        return stylesheet_response()
