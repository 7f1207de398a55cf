"""The account page: a signed-in person's profile, the apps that can act for them (with
"Revoke access"), their browser sessions (with "Sign out everywhere") and a password change.
A thin adapter around :class:`~oauth_server.accounts.access.AccountAccess`.

* Not signed in: ``GET /account`` answers 303 to ``/account/login``, a sign-in form of its
  own (the sign-in pages belong to an app's authorize request, and there is none here) with
  the same throttling, the one failure message and the same session cookie as theirs.
* Every form carries a CSRF token, compared in constant time: on the account page the
  HMAC-SHA256 of the browser session's id, on the sign-in form that of the browser-binding
  cookie's nonce (login CSRF), both under the sign-in pages' key. A POST without the right one
  gets 403 and changes nothing. The session cookies are ``SameSite=Lax`` on top of that.
* Every change acts on the session's user only: the ids in the forms (a client id, a session
  id) are looked up within that user's own apps and sessions, so a tampered id is a no-op.
* Every POST is answered with 303 (RFC 9700 §4.12) or, for a form to correct, the page again;
  every page with ``Cache-Control: no-store`` and the sign-in pages' security headers.
"""

from __future__ import annotations

from datetime import UTC, datetime

from oauth_server.accounts import InvalidPassword
from oauth_server.accounts.access import SessionInfo, WrongCurrentPassword
from oauth_server.errors import InvalidRequest, TooManyRequests
from oauth_server.oauth.http import OAuthRequest, OAuthResponse
from oauth_server.oauth.params import parse_form, parse_query
from oauth_server.storage.models import BrowserSession
from oauth_server.web.api import Api, Call
from oauth_server.web.pages import SCOPE_WORDS, Pages
from oauth_server.web.routes.signin import LoginRefused, check_login

__all__ = ["ACCOUNT_LOGIN_PATH", "ACCOUNT_PATH", "register"]

ACCOUNT_PATH = "/account"
ACCOUNT_LOGIN_PATH = "/account/login"
_PAGES = Pages()

# Where the login may send the browser after signing in: a fixed allowlist of local paths,
# never a URL from the request (no open redirect).
RETURN_PATHS = frozenset({"/account", "/admin"})


def _return_to(request: OAuthRequest) -> str:
    """The allowlisted ``return`` of the login's query, else the account page."""
    try:
        wanted = parse_query(request.query).get("return")
    except InvalidRequest:
        return ACCOUNT_PATH
    return wanted if wanted in RETURN_PATHS else ACCOUNT_PATH


# Fixed messages chosen by a short code in the redirect's query: nothing the page shows
# comes from the request.
_NOTICES = {
    "revoked": "The app's access was revoked. It must ask you again to get back in.",
    "session-ended": "That session was signed out.",
    "password-changed": (
        "Your password was changed. Every other browser was signed out and every app's "
        "refresh tokens were revoked; this browser stays signed in."
    ),
    "signed-out": "You were signed out of this browser.",
    "signed-out-everywhere": "You were signed out everywhere.",
}


def _csrf_for_session(call: Call, session: BrowserSession) -> str:
    return call.services.signin.csrf_token(f"account:{session.session_id}")


def _csrf_for_login(call: Call, nonce: str) -> str:
    return call.services.signin.csrf_token(f"account-login:{nonce}")


def _form(request: OAuthRequest) -> dict[str, str] | None:
    if request.content_type != "application/x-www-form-urlencoded":
        return None
    try:
        return parse_form(request.body)
    except InvalidRequest:
        return None


def _notice(request: OAuthRequest) -> str | None:
    try:
        done = parse_query(request.query).get("done")
    except InvalidRequest:
        return None
    return _NOTICES.get(done or "")


def _when(timestamp: int | None) -> str:
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _login_action(request: OAuthRequest) -> str:
    target = _return_to(request)
    return ACCOUNT_LOGIN_PATH if target == ACCOUNT_PATH else f"{ACCOUNT_LOGIN_PATH}?return={target}"


def _csrf_refused() -> OAuthResponse:
    return _PAGES.error(
        status=403,
        heading="This form cannot be accepted",
        message=(
            "The form was not sent by your account page (its security token is missing or "
            "wrong), so nothing was changed. Open your account page and try again."
        ),
        code="invalid_request",
        back_url=ACCOUNT_PATH,
        client_name="your account",
    )


def _to_login(*extra: tuple[str, str], done: str | None = None) -> OAuthResponse:
    location = f"{ACCOUNT_LOGIN_PATH}?done={done}" if done else ACCOUNT_LOGIN_PATH
    return OAuthResponse.redirect(location, headers=extra)


def _to_account(done: str, *extra: tuple[str, str]) -> OAuthResponse:
    return OAuthResponse.redirect(f"{ACCOUNT_PATH}?done={done}", headers=extra)


def _browser(user_agent: str) -> str:
    """A short, readable name for a ``User-Agent`` (the whole string goes in a tooltip)."""
    agent = user_agent.lower()
    browser = next(
        (
            name
            for key, name in (
                ("edg/", "Edge"),
                ("firefox/", "Firefox"),
                ("chromium/", "Chromium"),
                ("chrome/", "Chrome"),
                ("safari/", "Safari"),
                ("curl/", "curl"),
            )
            if key in agent
        ),
        "",
    )
    system = next(
        (
            name
            for key, name in (
                ("android", "Android"),
                ("iphone", "iPhone"),
                ("ipad", "iPad"),
                ("windows", "Windows"),
                ("mac os", "macOS"),
                ("linux", "Linux"),
            )
            if key in agent
        ),
        "",
    )
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or ("Unknown browser" if not user_agent else user_agent[:60])


def _session_view(info: SessionInfo) -> dict[str, object]:
    return {
        "id": info.session_id,
        "browser": _browser(info.user_agent),
        "user_agent": info.user_agent,
        "address": info.address,
        "signed_in": _when(info.auth_time),
        "last_seen": _when(info.last_seen),
        "current": info.current,
    }


async def _account_page(
    call: Call,
    session: BrowserSession,
    *,
    status: int = 200,
    password_error: str | None = None,
    notice: str | None = None,
) -> OAuthResponse:
    access = call.services.account_access
    user = await access.profile(user_id=session.user_id)
    if user is None:  # deleted while signed in (deletion ends sessions; a race at most)
        return _to_login()
    apps = await access.list_apps(user_id=user.user_id)
    sessions = await access.list_sessions(
        user_id=user.user_id, current_session_id=session.session_id
    )
    return _PAGES.render(
        "account.html",
        status=status,
        title="Your account",
        wide=True,
        user=user,
        member_since=_when(user.created_at),
        apps=[
            {
                "client_id": app.client_id,
                "name": app.name,
                "scopes": [
                    {"name": scope, "words": SCOPE_WORDS.get(scope, f"Use “{scope}”")}
                    for scope in app.scopes
                ],
                "granted_at": _when(app.granted_at),
                "last_used_at": _when(app.last_used_at),
            }
            for app in apps
        ],
        sessions=[_session_view(info) for info in sessions],
        csrf_token=_csrf_for_session(call, session),
        notice=notice if notice is not None else _notice(call.request),
        password_error=password_error,
    )


def register(api: Api) -> None:
    @api.route(ACCOUNT_PATH, methods=["GET"])
    async def account_page(call: Call) -> OAuthResponse:
        session = await call.services.signin.current_session(call.request, touch=True)
        if session is None:
            return _to_login()
        return await _account_page(call, session)

    @api.route(ACCOUNT_LOGIN_PATH, methods=["GET"])
    async def account_login_page(call: Call) -> OAuthResponse:
        if await call.services.signin.current_session(call.request) is not None:
            return OAuthResponse.redirect(_return_to(call.request))
        return _login_form(call, notice=_notice(call.request))

    @api.route(ACCOUNT_LOGIN_PATH, methods=["POST"])
    async def account_login_submit(call: Call) -> OAuthResponse:
        signin = call.services.signin
        nonce, _ = signin.browser_nonce(call.request)
        form = _form(call.request)
        # browser_nonce invents one when the cookie is missing: then no token can match.
        if form is None or not signin.csrf_ok(f"account-login:{nonce}", form.get("csrf_token")):
            return _csrf_refused()
        username = form.get("username", "")[:256]
        outcome = await check_login(call, username, form.get("password", ""))
        if isinstance(outcome, LoginRefused):
            page = _login_form(call, status=outcome.status, username=username, error=outcome.error)
            return page.with_headers(*outcome.headers)
        _, cookie = await signin.start_session(
            outcome.user_id,
            user_agent=call.request.headers.get("user-agent", ""),
            address=call.request.client_ip,
        )
        return OAuthResponse.redirect(_return_to(call.request), headers=(cookie,))

    def _login_form(
        call: Call,
        *,
        status: int = 200,
        username: str = "",
        error: str | None = None,
        notice: str | None = None,
    ) -> OAuthResponse:
        nonce, set_cookie = call.services.signin.browser_nonce(call.request)
        return _PAGES.render(
            "login.html",
            status=status,
            headers=set_cookie,
            title="Sign in",
            client_name="your account",
            action=_login_action(call.request),
            csrf_token=_csrf_for_login(call, nonce),
            username=username,
            error=error,
            notice=notice,
            cancel_url=None,
        )

    async def _signed_in_form(
        call: Call,
    ) -> tuple[BrowserSession, dict[str, str]] | OAuthResponse:
        """The session and the form of an account-page POST, or the answer refusing it."""
        session = await call.services.signin.current_session(call.request)
        if session is None:
            return _to_login()
        form = _form(call.request)
        if form is None or not call.services.signin.csrf_ok(
            f"account:{session.session_id}", form.get("csrf_token")
        ):
            return _csrf_refused()
        return session, form

    @api.route("/account/apps/revoke", methods=["POST"])
    async def revoke_app(call: Call) -> OAuthResponse:
        checked = await _signed_in_form(call)
        if isinstance(checked, OAuthResponse):
            return checked
        session, form = checked
        client_id = form.get("client_id", "")
        if client_id:
            # The session's user, never one from the form: another user's grant is untouched.
            await call.services.account_access.revoke_app(
                user_id=session.user_id, client_id=client_id[:255]
            )
        return _to_account("revoked")

    @api.route("/account/sessions/end", methods=["POST"])
    async def end_session(call: Call) -> OAuthResponse:
        checked = await _signed_in_form(call)
        if isinstance(checked, OAuthResponse):
            return checked
        session, form = checked
        session_id = form.get("session_id", "")[:64]
        access = call.services.account_access
        await access.end_session(user_id=session.user_id, session_id=session_id)
        if session_id == session.session_id:
            return _to_login(call.services.signin.end_session_cookie(), done="signed-out")
        return _to_account("session-ended")

    @api.route("/account/sessions/end-all", methods=["POST"])
    async def end_all_sessions(call: Call) -> OAuthResponse:
        checked = await _signed_in_form(call)
        if isinstance(checked, OAuthResponse):
            return checked
        session, _ = checked
        await call.services.account_access.end_all_sessions(user_id=session.user_id)
        return _to_login(call.services.signin.end_session_cookie(), done="signed-out-everywhere")

    @api.route("/account/password", methods=["POST"])
    async def change_password(call: Call) -> OAuthResponse:
        checked = await _signed_in_form(call)
        if isinstance(checked, OAuthResponse):
            return checked
        session, form = checked
        services = call.services
        new = form.get("new_password", "")
        if new != form.get("confirm_password", ""):
            return await _account_page(
                call, session, status=400, password_error="The new passwords do not match."
            )
        user = await services.account_access.profile(user_id=session.user_id)
        if user is None:
            return _to_login()
        address = call.request.client_ip
        limiter = services.limiter
        try:
            if limiter is not None:
                # The login budget: guessing the current password is guessing a login.
                await limiter.before_login(user.username, address)
        except TooManyRequests as exc:
            page = await _account_page(
                call,
                session,
                status=429,
                password_error="Too many failed attempts. Wait a minute, then try again.",
            )
            return page.with_headers(("Retry-After", str(exc.retry_after)))
        try:
            await services.account_access.change_password(
                user_id=user.user_id,
                current_password=form.get("current_password", ""),
                new_password=new,
            )
        except InvalidPassword as exc:
            message = str(exc)
            return await _account_page(
                call, session, status=400, password_error=message[:1].upper() + message[1:] + "."
            )
        except WrongCurrentPassword as exc:
            services.audit.record(
                "login_failed",
                reason=exc.reason,
                user_id=user.user_id,
                ip=address,
                endpoint=call.request.path,
            )
            if limiter is not None:
                await limiter.login_failed(user.username, address)
            return await _account_page(
                call, session, status=400, password_error="The current password is wrong."
            )
        # Every session ended with the change, this one too: this browser, which just proved
        # the password, gets a fresh one and stays signed in.
        _, cookie = await services.signin.start_session(
            user.user_id, user_agent=call.request.headers.get("user-agent", ""), address=address
        )
        return _to_account("password-changed", cookie)

    @api.route("/account/logout", methods=["POST"])
    async def logout(call: Call) -> OAuthResponse:
        checked = await _signed_in_form(call)
        if isinstance(checked, OAuthResponse):
            return checked
        session, _ = checked
        await call.services.account_access.end_session(
            user_id=session.user_id, session_id=session.session_id
        )
        return _to_login(call.services.signin.end_session_cookie(), done="signed-out")
