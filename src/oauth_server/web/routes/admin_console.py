"""The admin console under ``/admin``: clients, users, signing keys and recent audit events,
as server-rendered pages. A thin adapter over the core (:class:`ClientRegistry`,
:class:`Accounts`, :class:`AccountAccess`, the key manager, the audit repository); every
change is audited there, as for the CLI.

* Not signed in: 303 to ``/account/login?return=/admin`` (the return is allowlisted there).
* Signed in without the admin flag: 403, a page. The flag is read from the user's row on every
  request, so withdrawing it (``users set-admin --no``) counts at once; so does disabling.
* Every form carries a CSRF token (the HMAC of the browser session's id under the sign-in
  pages' key, with its own label), compared in constant time; a POST without the right one
  gets 403 and changes nothing. Every POST is answered with 303 (RFC 9700 §4.12) or a page;
  every page is ``no-store`` with the sign-in pages' security headers. A new or rotated
  client secret is shown on the POST's own answer, once, and never stored in usable form.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from oauth_server.errors import InvalidRequest
from oauth_server.oauth.clients import InvalidClientMetadata, NewClient
from oauth_server.oauth.http import OAuthRequest, OAuthResponse
from oauth_server.oauth.params import parse_form, parse_query
from oauth_server.storage.models import BrowserSession, User
from oauth_server.web.api import Api, Call
from oauth_server.web.pages import Pages
from oauth_server.web.routes.account import ACCOUNT_LOGIN_PATH

__all__ = ["ADMIN_PATH", "register"]

ADMIN_PATH = "/admin"
_PAGES = Pages()
_GRANTS = ("client_credentials", "authorization_code", "refresh_token")
_NOTICES = {
    "updated": "The client was updated.",
    "disabled": "The user was disabled and signed out everywhere.",
    "enabled": "The user was enabled.",
    "signed-out": "The user was signed out everywhere.",
    "key-rotated": "A new signing key was published.",
}


def _when(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _form(request: OAuthRequest) -> dict[str, str] | None:
    if request.content_type != "application/x-www-form-urlencoded":
        return None
    try:
        return parse_form(request.body)
    except InvalidRequest:
        return None


def _query(request: OAuthRequest) -> dict[str, str]:
    try:
        return dict(parse_query(request.query))
    except InvalidRequest:
        return {}


def _words(value: str) -> list[str]:
    return [part for part in value.replace(",", " ").split() if part]


def _csrf(call: Call, session: BrowserSession) -> str:
    return call.services.signin.csrf_token(f"admin:{session.session_id}")


def _refused(status: int, heading: str, message: str) -> OAuthResponse:
    return _PAGES.error(
        status=status,
        heading=heading,
        message=message,
        code="access_denied" if status == 403 else "invalid_request",
        back_url=ADMIN_PATH,
        client_name="the admin console",
    )


def _csrf_refused() -> OAuthResponse:
    return _refused(
        403,
        "This form cannot be accepted",
        "The form was not sent by the admin console (its security token is missing or "
        "wrong), so nothing was changed. Open the console and try again.",
    )


async def _admin(call: Call) -> tuple[BrowserSession, User] | OAuthResponse:
    """The signed-in admin, or the answer for anyone else (login redirect or 403)."""
    session = await call.services.signin.current_session(call.request, touch=True)
    if session is None:
        return OAuthResponse.redirect(f"{ACCOUNT_LOGIN_PATH}?return={ADMIN_PATH}")
    # Read on every request: a withdrawn flag or a disabled account counts at once.
    user = await call.services.accounts.get(session.user_id)
    if user is None or user.disabled or not user.is_admin:
        return _refused(
            403,
            "Administrators only",
            "You are signed in, but your account is not an administrator's. "
            "Nothing here is available to you.",
        )
    return session, user


async def _admin_post(call: Call) -> tuple[BrowserSession, User, dict[str, str]] | OAuthResponse:
    checked = await _admin(call)
    if isinstance(checked, OAuthResponse):
        return checked
    session, user = checked
    form = _form(call.request)
    if form is None or not call.services.signin.csrf_ok(
        f"admin:{session.session_id}", form.get("csrf_token")
    ):
        return _csrf_refused()
    return session, user, form


def _page(
    call: Call,
    session: BrowserSession,
    admin: User,
    template: str,
    *,
    title: str,
    section: str,
    status: int = 200,
    **context: Any,
) -> OAuthResponse:
    return _PAGES.render(
        template,
        status=status,
        title=title,
        wide=True,
        section=section,
        admin=admin,
        csrf_token=_csrf(call, session),
        notice=_NOTICES.get(_query(call.request).get("done", "")),
        **context,
    )


def _secret_page(
    call: Call, session: BrowserSession, admin: User, new: NewClient, *, rotated: bool
) -> OAuthResponse:
    return _page(
        call,
        session,
        admin,
        "admin_secret.html",
        title="Client secret",
        section="clients",
        client=new.client,
        secret=new.secret,
        rotated=rotated,
    )


def register(api: Api) -> None:
    @api.route(ADMIN_PATH, methods=["GET"])
    async def admin_home(call: Call) -> OAuthResponse:
        checked = await _admin(call)
        if isinstance(checked, OAuthResponse):
            return checked
        return OAuthResponse.redirect(f"{ADMIN_PATH}/clients")

    @api.route(f"{ADMIN_PATH}/clients", methods=["GET"])
    async def clients_page(call: Call) -> OAuthResponse:
        checked = await _admin(call)
        if isinstance(checked, OAuthResponse):
            return checked
        session, admin = checked
        q = _query(call.request).get("q", "")[:128].strip()
        clients = await call.services.storage.clients.list()
        needle = q.lower()
        shown = [
            c
            for c in sorted(clients, key=lambda c: (c.name.lower(), c.client_id))
            if not needle or needle in c.client_id.lower() or needle in c.name.lower()
        ]
        return _page(
            call,
            session,
            admin,
            "admin_clients.html",
            title="Clients",
            section="clients",
            q=q,
            clients=shown,
            grants=_GRANTS,
            error=None,
            draft={},
        )

    @api.route(f"{ADMIN_PATH}/clients/create", methods=["POST"])
    async def create_client(call: Call) -> OAuthResponse:
        checked = await _admin_post(call)
        if isinstance(checked, OAuthResponse):
            return checked
        session, admin, form = checked
        client_type: Literal["confidential", "public"] = (
            "public" if form.get("client_type") == "public" else "confidential"
        )
        grants = [g for g in _GRANTS if form.get(f"grant_{g}") == "on"]
        try:
            new = await call.services.registry.create(
                name=form.get("name", "")[:200].strip(),
                client_type=client_type,
                grant_types=grants,
                scopes=_words(form.get("scopes", "")[:2000]),
                redirect_uris=_words(form.get("redirect_uris", "")[:8000]),
            )
        except InvalidClientMetadata as exc:
            clients = await call.services.storage.clients.list()
            return _page(
                call,
                session,
                admin,
                "admin_clients.html",
                title="Clients",
                section="clients",
                status=400,
                q="",
                clients=sorted(clients, key=lambda c: (c.name.lower(), c.client_id)),
                grants=_GRANTS,
                error=f"The client was not created: {exc}.",
                draft=form,
            )
        return _secret_page(call, session, admin, new, rotated=False)

    @api.route(f"{ADMIN_PATH}/clients/update", methods=["POST"])
    async def update_client(call: Call) -> OAuthResponse:
        checked = await _admin_post(call)
        if isinstance(checked, OAuthResponse):
            return checked
        _, _, form = checked
        client_id = form.get("client_id", "")[:128]
        try:
            updated = await call.services.registry.update(
                client_id,
                scopes=_words(form.get("scopes", "")[:2000]),
                redirect_uris=_words(form.get("redirect_uris", "")[:8000]),
            )
        except InvalidClientMetadata as exc:
            return _refused(400, "The client was not changed", f"{exc}.")
        if updated is None:
            return _refused(404, "No such client", "That client does not exist any more.")
        return OAuthResponse.redirect(f"{ADMIN_PATH}/clients?done=updated")

    @api.route(f"{ADMIN_PATH}/clients/rotate", methods=["POST"])
    async def rotate_client_secret(call: Call) -> OAuthResponse:
        checked = await _admin_post(call)
        if isinstance(checked, OAuthResponse):
            return checked
        session, admin, form = checked
        try:
            new = await call.services.registry.rotate_secret(form.get("client_id", "")[:128])
        except InvalidClientMetadata as exc:
            return _refused(400, "No secret to rotate", f"{str(exc).capitalize()}.")
        if new is None:
            return _refused(404, "No such client", "That client does not exist any more.")
        return _secret_page(call, session, admin, new, rotated=True)

    @api.route(f"{ADMIN_PATH}/users", methods=["GET"])
    async def users_page(call: Call) -> OAuthResponse:
        checked = await _admin(call)
        if isinstance(checked, OAuthResponse):
            return checked
        session, admin = checked
        q = _query(call.request).get("q", "")[:128].strip()
        needle = q.lower()
        users = await call.services.accounts.list(limit=500)
        shown = [
            u
            for u in users
            if not needle
            or needle in u.username.lower()
            or needle in u.name.lower()
            or needle in (u.email or "").lower()
        ]
        return _page(
            call,
            session,
            admin,
            "admin_users.html",
            title="Users",
            section="users",
            q=q,
            users=[{"user": u, "created": _when(u.created_at)} for u in shown],
        )

    @api.route(f"{ADMIN_PATH}/users/disable", methods=["POST"])
    async def disable_user(call: Call) -> OAuthResponse:
        checked = await _admin_post(call)
        if isinstance(checked, OAuthResponse):
            return checked
        _, _, form = checked
        disable = form.get("disabled") == "true"
        user_id = form.get("user_id", "")[:64]
        accounts = call.services.accounts
        # False also when it is already so (a second click): only a missing user is an error.
        if (
            not await accounts.set_disabled(user_id, disable)
            and await accounts.get(user_id) is None
        ):
            return _refused(404, "No such user", "That user does not exist any more.")
        return OAuthResponse.redirect(
            f"{ADMIN_PATH}/users?done={'disabled' if disable else 'enabled'}"
        )

    @api.route(f"{ADMIN_PATH}/users/sign-out", methods=["POST"])
    async def sign_out_user(call: Call) -> OAuthResponse:
        checked = await _admin_post(call)
        if isinstance(checked, OAuthResponse):
            return checked
        _, _, form = checked
        await call.services.account_access.end_all_sessions(user_id=form.get("user_id", "")[:64])
        return OAuthResponse.redirect(f"{ADMIN_PATH}/users?done=signed-out")

    @api.route(f"{ADMIN_PATH}/keys", methods=["GET"])
    async def keys_page(call: Call) -> OAuthResponse:
        checked = await _admin(call)
        if isinstance(checked, OAuthResponse):
            return checked
        session, admin = checked
        rows = [
            {
                **row,
                "activates": _when(row["activates_at"]),
                "signs_until": _when(row["signs_until"]),
                "verifies_until": _when(row["verifies_until"]),
            }
            for row in call.services.keys.describe()
        ]
        return _page(
            call, session, admin, "admin_keys.html", title="Signing keys", section="keys", keys=rows
        )

    @api.route(f"{ADMIN_PATH}/keys/rotate", methods=["POST"])
    async def rotate_key(call: Call) -> OAuthResponse:
        checked = await _admin_post(call)
        if isinstance(checked, OAuthResponse):
            return checked
        if await call.services.keys.rotate() is None:
            return _refused(
                409, "Not rotated", "Another instance created a key at the same moment; retry."
            )
        return OAuthResponse.redirect(f"{ADMIN_PATH}/keys?done=key-rotated")

    @api.route(f"{ADMIN_PATH}/audit", methods=["GET"])
    async def audit_page(call: Call) -> OAuthResponse:
        checked = await _admin(call)
        if isinstance(checked, OAuthResponse):
            return checked
        session, admin = checked
        records = await call.services.storage.audit.recent(limit=50)
        events = []
        for record in records:
            try:
                data = json.loads(record.data)
            except ValueError:
                data = {}
            fields = data if isinstance(data, dict) else {}
            events.append(
                {
                    "at": datetime.fromtimestamp(record.at_ms / 1000, UTC).strftime(
                        "%Y-%m-%d %H:%M:%S UTC"
                    ),
                    "kind": record.kind,
                    "client_id": str(fields.get("client_id", "")),
                    "user_id": str(fields.get("user_id", "")),
                }
            )
        return _page(
            call,
            session,
            admin,
            "admin_audit.html",
            title="Audit events",
            section="audit",
            events=events,
        )
