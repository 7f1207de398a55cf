"""The end-session endpoint (OpenID Connect RP-Initiated Logout 1.0): a thin adapter around
:class:`~oauth_server.oauth.endpoints.end_session.EndSession`, which decides; this renders.

Form contract (README "Sign out"): the confirmation form posts the request's parameters back
with ``csrf_token`` and a ``decision`` of ``logout`` or ``stay``; it is answered with 303 (to
the RP's ``post_logout_redirect_uri``) or the signed-out page.
"""

from __future__ import annotations

from oauth_server.errors import LogoutRefused
from oauth_server.oauth.endpoints.end_session import ConfirmLogout, LoggedOut
from oauth_server.oauth.endpoints.metadata import END_SESSION_PATH
from oauth_server.oauth.http import OAuthResponse
from oauth_server.web.api import Api, Call, Doc
from oauth_server.web.pages import Pages

__all__ = ["register"]

_PAGES = Pages()

_DOC = Doc(
    summary="End-session endpoint (OpenID Connect RP-Initiated Logout 1.0)",
    tags=["sign-in"],
    description=(
        "Signs the user out of the server: `id_token_hint`, `logout_hint`, `client_id`, "
        "`post_logout_redirect_uri` (exactly one registered for the client), `state`, "
        "`ui_locales`, in the query (GET) or a form (POST). Without an `id_token_hint` of the "
        "current browser session a confirmation page is shown first. Then a 303 to "
        "`post_logout_redirect_uri` with `state`, or the signed-out page."
    ),
    responses={
        200: ("The confirmation page, or the signed-out page", None),
        303: ("To the client's post_logout_redirect_uri, with state", None),
        400: ("HTML error page: unknown client, unregistered redirect, invalid hint", None),
    },
)


def _refused(exc: LogoutRefused) -> OAuthResponse:
    return _PAGES.error(
        status=400,
        heading="This sign-out request cannot be completed",
        message=(
            "The app that sent you here made a sign-out request this server cannot accept, "
            "so nothing changed and you were not sent back to it."
        ),
        description=exc.description,
        code=exc.error,
    )


async def _confirmation(call: Call, step: ConfirmLogout) -> OAuthResponse:
    username = ""
    session = await call.services.signin.current_session(call.request)
    if session is not None:
        user = await call.services.accounts.get(session.user_id)
        username = user.username if user else ""
    return _PAGES.render(
        "logout.html",
        redirect_uri=step.request.post_logout_redirect_uri,
        headers=step.headers,
        title="Sign out",
        client_name=step.request.client_name,
        signed_in=step.signed_in and bool(username),
        username=username,
        action=END_SESSION_PATH,
        csrf_token=step.csrf_token,
        fields=step.fields,
    )


def _finished(step: LoggedOut) -> OAuthResponse:
    if step.response is not None:
        return step.response.with_headers(*step.headers)
    if step.stayed:
        return _PAGES.render(
            "signed_out.html",
            headers=step.headers,
            title="Still signed in",
            heading="You are still signed in",
            message="Nothing changed: you stay signed in on this browser.",
            note="You can close this page.",
        )
    return _PAGES.render(
        "signed_out.html",
        headers=step.headers,
        title="Signed out",
        heading="You are signed out",
        message="You have signed out of every app that uses this server in this browser.",
        note="You can close this page. Signing in again asks for your password.",
    )


def register(api: Api) -> None:
    @api.route(END_SESSION_PATH, methods=["GET", "POST"], doc=_DOC)
    async def end_session(call: Call) -> OAuthResponse:
        try:
            step = await call.services.end_session.handle(call.request)
        except LogoutRefused as exc:
            return _refused(exc)
        if isinstance(step, ConfirmLogout):
            return await _confirmation(call, step)
        return _finished(step)
