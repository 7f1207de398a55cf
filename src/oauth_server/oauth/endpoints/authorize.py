"""The authorization endpoint (RFC 6749 §3.1, §4.1.1; OAuth 2.1 §4.1.1), GET and POST.

Checked in this order, because the first two decide whether an error may be redirected:

1. ``client_id`` names a registered client — else an HTML page (400), never a redirect.
2. ``redirect_uri`` is registered (:func:`redirect_uri_matches`); it may be omitted only when
   exactly one is registered and the request is not an OpenID Connect one (OIDC Core
   §3.1.2.1 makes it REQUIRED) — else an HTML page (400), never a redirect (§4.1.2.1).
3. From here every error goes back to the redirect URI with ``state`` and ``iss``
   (RFC 9207 §2): ``response_mode``, repeated parameters, ``response_type=code``, the
   client's grant, the scope, PKCE (RFC 7636 §4.2-4.3, S256 only), ``resource`` (RFC 8707),
   ``prompt`` and ``max_age`` (OIDC Core §3.1.2.1); ``request`` / ``request_uri`` →
   ``request_not_supported`` / ``request_uri_not_supported`` (OIDC Core §3.1.2.6; discovery
   says ``request_parameter_supported: false``), never silently ignored.
4. ``id_token_hint`` (OIDC Core §3.1.2.1): an ID token this server issued to this client (an
   expired one is fine: it names a user, it grants nothing); else ``invalid_request``. The
   sign-in then continues only for the user it names ("If the End-User identified by the ID
   Token is logged in or is logged in by the request, then the Authorization Server returns
   a positive response; otherwise, it SHOULD return an error, such as login_required").
5. The valid request goes to :class:`~oauth_server.oauth.interaction.SignIn`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from oauth_server.errors import (
    AuthorizationError,
    InvalidRequest,
    ServiceError,
    UnsupportedResponseType,
    UntrustedRedirect,
)
from oauth_server.oauth.clients import ClientDirectory
from oauth_server.oauth.http import (
    OAuthRequest,
    OAuthResponse,
    RedirectTarget,
    ResponseMode,
    render_error,
)
from oauth_server.oauth.interaction import AuthorizeRequest, SignIn
from oauth_server.oauth.params import MAX_PARAM_LENGTH, MAX_PARAMS, is_client_id, split_urlencoded
from oauth_server.oauth.redirect_uris import redirect_uri_matches
from oauth_server.oauth.resources import resolve_audience
from oauth_server.oauth.scopes import resolve_scope
from oauth_server.oauth.tokens.id_token import IdTokenVerifier
from oauth_server.storage.models import Client

__all__ = ["AuthorizationEndpoint", "resolve_redirect_uri"]

# RFC 7636 §4.2: code-challenge = 43*128unreserved
_CHALLENGE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_PROMPTS = frozenset({"none", "login", "consent"})
_MODES: dict[str, ResponseMode] = {"query": "query", "form_post": "form_post"}


def resolve_redirect_uri(client: Client, presented: str | None) -> str:
    """The redirect URI to answer to, or :class:`UntrustedRedirect` (RFC 6749 §3.1.2.3: required
    when several are registered; OAuth 2.1 §4.1.1: compared as exact strings)."""
    if presented is None:
        if len(client.redirect_uris) == 1:
            return client.redirect_uris[0]
        raise UntrustedRedirect("the redirect_uri parameter is required for this client")
    if any(redirect_uri_matches(uri, presented) for uri in client.redirect_uris):
        return presented
    raise UntrustedRedirect("the redirect_uri is not registered for this client")


class AuthorizationEndpoint:
    def __init__(
        self,
        *,
        clients: ClientDirectory,
        signin: SignIn,
        default_resource: str,
        hints: IdTokenVerifier | None = None,
    ) -> None:
        self._clients = clients
        self._signin = signin
        self._default_resource = default_resource
        self._hints = hints

    async def handle(self, request: OAuthRequest) -> OAuthResponse:
        pairs = self.read_pairs(request)
        client = await self.find_client(pairs)
        presented = _single(pairs, "redirect_uri")
        if presented is None and len(client.redirect_uris) == 1 and self.is_openid(pairs, client):
            # OIDC Core §3.1.2.1: redirect_uri is REQUIRED in an OpenID Connect request, even
            # with one registered (RFC 6749 §3.1.2.3 lets OAuth requests omit it then).
            raise UntrustedRedirect("the redirect_uri parameter is required (OpenID Connect)")
        redirect_uri = resolve_redirect_uri(client, presented)
        target = self.redirect_target(pairs, redirect_uri)
        try:
            areq = self.validate(pairs, client, target)
            areq = await self.check_id_token_hint(pairs, areq)
        except AuthorizationError as exc:
            return render_error(exc, target)
        except ServiceError as exc:  # InvalidScope, InvalidTarget, InvalidRequest
            return render_error(AuthorizationError(exc.description, error=exc.error), target)
        return await self._signin.start(request, areq, client)

    @staticmethod
    def is_openid(pairs: Mapping[str, list[str]], client: Client) -> bool:
        """Whether the request asks for ``openid`` (its scope, or the client's default)."""
        scopes = pairs.get("scope")
        if scopes:
            return any("openid" in value.split() for value in scopes)
        return "openid" in client.default_scopes

    async def check_id_token_hint(
        self, pairs: Mapping[str, list[str]], areq: AuthorizeRequest
    ) -> AuthorizeRequest:
        token = _single(pairs, "id_token_hint")
        if token is None or self._hints is None:
            return areq
        hint = await self._hints.verify_hint(token, areq.client_id)  # InvalidRequest
        return replace(areq, hint_subject=hint.subject)

    @staticmethod
    def read_pairs(request: OAuthRequest) -> dict[str, list[str]]:
        """Every parameter with all its values (GET: query; POST: form body, §3.1)."""
        if request.method == "POST":
            if request.content_type != "application/x-www-form-urlencoded":
                raise UntrustedRedirect("the request body must be a form")
            try:
                raw = list(split_urlencoded(request.body.decode("utf-8")))
            except UnicodeDecodeError:
                raise UntrustedRedirect("the request body is not valid UTF-8") from None
        else:
            raw = list(request.query)
        if len(raw) > MAX_PARAMS:
            raise UntrustedRedirect("too many parameters")
        pairs: dict[str, list[str]] = {}
        for name, value in raw:
            if len(value) > MAX_PARAM_LENGTH:
                raise UntrustedRedirect(f"parameter {name[:32]!r} is too long")
            if value:  # §3.1: parameters sent without a value are treated as omitted
                pairs.setdefault(name, []).append(value)
        return pairs

    async def find_client(self, pairs: Mapping[str, list[str]]) -> Client:
        client_id = _single(pairs, "client_id")
        if client_id is None or not is_client_id(client_id):
            raise UntrustedRedirect("the client_id parameter is missing or malformed")
        client = await self._clients.get(client_id)
        if client is None or not client.redirect_uris:
            raise UntrustedRedirect("unknown client")
        return client

    def redirect_target(self, pairs: Mapping[str, list[str]], redirect_uri: str) -> RedirectTarget:
        states = pairs.get("state", [])
        mode = _MODES.get((pairs.get("response_mode") or ["query"])[0], "query")
        return RedirectTarget(
            redirect_uri, self._signin.issuer, states[0] if len(states) == 1 else None, mode
        )

    def validate(
        self, pairs: Mapping[str, list[str]], client: Client, target: RedirectTarget
    ) -> AuthorizeRequest:
        repeated = sorted(name for name, values in pairs.items() if len(values) > 1)
        if repeated:
            raise InvalidRequest(f"parameter {repeated[0][:32]!r} must not be repeated")
        params = {name: values[0] for name, values in pairs.items()}
        mode = params.get("response_mode", "query")
        if mode not in _MODES:
            raise InvalidRequest("response_mode must be query or form_post")
        self.check_response_type(params.get("response_type"))
        if "request" in params:
            raise AuthorizationError(
                "request objects are not supported", error="request_not_supported"
            )
        if "request_uri" in params:
            raise AuthorizationError(
                "request_uri is not supported", error="request_uri_not_supported"
            )
        if "authorization_code" not in client.grant_types:
            raise AuthorizationError(
                "this client may not use the authorization code grant", error="unauthorized_client"
            )
        scope = resolve_scope(
            params.get("scope"), allowed=client.scopes, default=client.default_scopes
        )
        challenge, method = self.check_pkce(params, client)
        resource = ""
        if "resource" in params:
            resource = resolve_audience(
                params["resource"], client=client, default=self._default_resource
            )[0]
        prompt = self.check_prompt(params.get("prompt"))
        return AuthorizeRequest(
            client_id=client.client_id,
            redirect_uri=target.redirect_uri,
            scope=scope,
            state=params.get("state"),
            response_mode=_MODES[mode],
            code_challenge=challenge,
            code_challenge_method=method,
            resource=resource,
            nonce=params.get("nonce", ""),
            prompt=prompt,
            max_age=self.check_max_age(params.get("max_age")),
            login_hint=params.get("login_hint", "")[:256],
        )

    @staticmethod
    def check_response_type(response_type: str | None) -> None:
        if response_type is None:
            raise InvalidRequest("the response_type parameter is required")
        if response_type != "code":
            raise UnsupportedResponseType("only response_type=code is supported")

    @staticmethod
    def check_pkce(params: Mapping[str, str], client: Client) -> tuple[str, str]:
        """RFC 7636 §4.3 / OAuth 2.1 §4.1.1: required for public clients and by default for
        all; only S256 (RFC 9700 §2.1.1: ``plain`` is a downgrade)."""
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        if challenge is None:
            if method is not None:
                raise InvalidRequest("code_challenge_method without code_challenge")
            if client.client_type == "public" or client.require_pkce:
                raise InvalidRequest("code_challenge is required (PKCE, RFC 7636)")
            return "", ""
        if method != "S256":
            raise InvalidRequest("code_challenge_method must be S256")
        if not _CHALLENGE.fullmatch(challenge):
            raise InvalidRequest("code_challenge must be 43-128 characters of [A-Za-z0-9-._~]")
        return challenge, method

    @staticmethod
    def check_prompt(value: str | None) -> tuple[str, ...]:
        prompts = tuple(dict.fromkeys(value.split())) if value else ()
        if any(prompt not in _PROMPTS for prompt in prompts):
            raise InvalidRequest("prompt may be none, login or consent")
        if "none" in prompts and len(prompts) > 1:
            raise InvalidRequest("prompt=none cannot be combined with other values")
        return prompts

    @staticmethod
    def check_max_age(value: str | None) -> int | None:
        if value is None:
            return None
        if not (value.isascii() and value.isdigit()) or len(value) > 10:
            raise InvalidRequest("max_age must be a non-negative integer")
        return int(value)


def _single(pairs: Mapping[str, list[str]], name: str) -> str | None:
    values = pairs.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise UntrustedRedirect(f"parameter {name!r} must not be repeated")
    return values[0]
