"""The one error hierarchy. Raise anywhere; :func:`oauth_server.oauth.http.render_error` renders.

Each class carries the RFC ``error`` code and the HTTP status. ``description`` is sent to the
client; ``detail`` goes only to the log.

::

    ServiceError                      base: error code + status + public description
    ├── OAuthError                    RFC 6749 §5.2 token/endpoint errors, JSON body
    │   ├── InvalidRequest            400 missing, repeated or malformed parameter (§5.2)
    │   │   └── LogoutRefused         400 HTML page, never a redirect: a logout request whose
    │   │                             client or post_logout_redirect_uri does not check out
    │   │                             (OpenID Connect RP-Initiated Logout 1.0 §3)
    │   ├── InvalidClient             401 client authentication failed (§5.2); Basic challenge
    │   ├── InvalidGrant              400 grant invalid, expired, revoked or not the client's (§5.2)
    │   ├── UnauthorizedClient        400 client may not use this grant type (§5.2)
    │   ├── UnsupportedGrantType      400 grant type not supported (§5.2)
    │   ├── InvalidScope              400 scope unknown, malformed or beyond the allowed (§5.2)
    │   ├── InvalidTarget             400 resource indicator not allowed (RFC 8707 §2)
    │   ├── UnsupportedTokenType      400 revoking this token type unsupported (RFC 7009 §2.2.1)
    │   ├── RegistrationError         400 client registration refused (RFC 7591 §3.2.2)
    │   │   ├── InvalidRedirectUriError      a redirect URI is invalid or outside the policy
    │   │   ├── InvalidClientMetadataError   another metadata value is invalid or refused
    │   │   ├── InvalidSoftwareStatement     the software statement is not a JWT
    │   │   └── UnapprovedSoftwareStatement  the software statement is not approved
    │   └── AuthorizationError        302/303 to the client's redirect URI with error, state, iss
    │       │                         (RFC 6749 §4.1.2.1, RFC 9207 §2); any §4.1.2.1 code
    │       ├── AccessDenied          the user or the server denied the request (§4.1.2.1)
    │       ├── UnsupportedResponseType  response_type other than ``code`` (§4.1.2.1)
    │       └── UntrustedRedirect     400 HTML page, never a redirect: the client or its redirect
    │                                 URI is unknown or invalid (§4.1.2.1 first paragraph)
    ├── BearerError                   RFC 6750 §3 resource errors, ``WWW-Authenticate: Bearer``
    │   ├── BearerChallenge           401 no usable credentials: challenge without error (§3.1)
    │   ├── InvalidBearerRequest      400 malformed or empty Bearer credentials (§3.1)
    │   ├── InvalidToken              401 expired, revoked, malformed, foreign token (§3.1)
    │   │   └── MissingToken          401 ``invalid_token`` body, challenge without error code
    │   │                             (no token sent, §3.1; registration endpoints)
    │   └── InsufficientScope         403 token lacks the scope (§3.1)
    ├── RequestTooLarge               413 body over the configured cap, refused before parsing
    ├── Forbidden                     403 the caller's address may not use this operations
    │                                 endpoint (``/metrics`` allow list)
    ├── NotFound                      404 no such resource
    ├── Conflict                      409 the identifier is taken (admin API)
    ├── InvalidFields                 422 a well-formed body whose fields are refused (admin
    │                                 API), each field named with its reason in ``fields``
    ├── MethodNotAllowed              405 wrong HTTP method
    ├── TooManyRequests               429 rate limited, ``Retry-After``
    ├── ServerError                   500 unexpected failure; details only in the log
    └── TemporarilyUnavailable        503 storage unreachable, ``Retry-After``
"""

from __future__ import annotations

import re
from typing import ClassVar

__all__ = [
    "AccessDenied",
    "AuthorizationError",
    "BearerChallenge",
    "BearerError",
    "Conflict",
    "Forbidden",
    "InsufficientScope",
    "InvalidBearerRequest",
    "InvalidClient",
    "InvalidClientMetadataError",
    "InvalidFields",
    "InvalidGrant",
    "InvalidRedirectUriError",
    "InvalidRequest",
    "InvalidScope",
    "InvalidSoftwareStatement",
    "InvalidTarget",
    "InvalidToken",
    "LogoutRefused",
    "MethodNotAllowed",
    "MissingToken",
    "NotFound",
    "OAuthError",
    "RegistrationError",
    "RequestTooLarge",
    "ServerError",
    "ServiceError",
    "TemporarilyUnavailable",
    "TooManyRequests",
    "UnapprovedSoftwareStatement",
    "UnauthorizedClient",
    "UnsupportedGrantType",
    "UnsupportedResponseType",
    "UnsupportedTokenType",
    "UntrustedRedirect",
]

# OAuth 2.1 §3.2.4 / RFC 6749 §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
_NOT_ALLOWED_IN_DESCRIPTION = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def _safe_description(text: str) -> str:
    return _NOT_ALLOWED_IN_DESCRIPTION.sub("'", text.replace("\\", "/"))[:300]


class ServiceError(Exception):
    """Base of every error the server renders for a client."""

    error: ClassVar[str] = "server_error"
    status_code: ClassVar[int] = 500

    def __init__(self, description: str | None = None, *, detail: str | None = None) -> None:
        self.description = _safe_description(description) if description else None
        self.detail = detail
        super().__init__(description or self.error)

    def headers(self) -> dict[str, str]:
        """Extra response headers (challenges, ``Retry-After``)."""
        return {}

    def body(self) -> dict[str, str]:
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


class OAuthError(ServiceError):
    """An RFC 6749 §5.2 error."""

    status_code: ClassVar[int] = 400


class InvalidRequest(OAuthError):
    error = "invalid_request"


class LogoutRefused(InvalidRequest):
    """The end-session request cannot be honoured as sent (unknown client, a
    ``post_logout_redirect_uri`` not registered for it or without a client, malformed
    parameters). RP-Initiated Logout 1.0 §3: the OP "MUST NOT perform post-logout
    redirection" then; the web layer shows an error page with status 400."""


class InvalidClient(OAuthError):
    """Client authentication failed. RFC 6749 §5.2: 401 and a ``WWW-Authenticate`` challenge
    matching the scheme the client used (Basic); we always send the Basic challenge because it
    is the method the client MUST support (§2.3.1)."""

    error = "invalid_client"
    status_code = 401

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Basic realm="oauth", charset="UTF-8"'}


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class InvalidTarget(OAuthError):
    error = "invalid_target"


class UnsupportedTokenType(OAuthError):
    error = "unsupported_token_type"


class RegistrationError(OAuthError):
    """A client registration or update the server refuses (RFC 7591 §3.2.2, RFC 7592 §2.2):
    400 with a JSON body of ``error`` and ``error_description``."""

    error: ClassVar[str] = "invalid_client_metadata"


class InvalidRedirectUriError(RegistrationError):
    """RFC 7591 §3.2.2: "The value of one or more redirection URIs is invalid"."""

    error = "invalid_redirect_uri"


class InvalidClientMetadataError(RegistrationError):
    """RFC 7591 §3.2.2: "The value of one of the client metadata fields is invalid and the
    server has rejected this request"."""

    error = "invalid_client_metadata"


class InvalidSoftwareStatement(RegistrationError):
    """RFC 7591 §3.2.2: "The software statement presented is invalid"."""

    error = "invalid_software_statement"


class UnapprovedSoftwareStatement(RegistrationError):
    """RFC 7591 §3.2.2: "The software statement presented is not approved for use by this
    authorization server"."""

    error = "unapproved_software_statement"


class AuthorizationError(OAuthError):
    """An error of the authorization endpoint (RFC 6749 §4.1.2.1). The renderer sends it back
    to the redirect URI the caller validated, with ``state`` and ``iss`` (RFC 9207 §2), in the
    query or as a form_post page; without a validated redirect URI it is an HTML page with
    status 400. ``error`` may be any code of §4.1.2.1 (or OpenID Connect Core §3.1.2.6, such as
    ``login_required``); subclasses name the common ones."""

    error: ClassVar[str] = "invalid_request"
    redirectable: ClassVar[bool] = True

    def __init__(
        self, description: str | None = None, *, detail: str | None = None, error: str | None = None
    ) -> None:
        super().__init__(description, detail=detail)
        if error is not None:
            if not _ERROR_CODE.fullmatch(error):
                raise ValueError(f"not an error code: {error!r}")
            self.error = error  # type: ignore[misc]


# RFC 6749 §4.1.2.1 / Appendix A.7: error = 1*NQSCHAR (%x20-21 / %x23-5B / %x5D-7E).
_ERROR_CODE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]+")


class AccessDenied(AuthorizationError):
    error = "access_denied"


class UnsupportedResponseType(AuthorizationError):
    error = "unsupported_response_type"


class UntrustedRedirect(AuthorizationError):
    """The client is unknown or the redirect URI missing, unregistered or invalid: RFC 6749
    §4.1.2.1 says the server MUST NOT redirect, so the user sees an error page (status 400)."""

    redirectable = False


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class BearerError(ServiceError):
    """An RFC 6750 §3 error: rendered with a ``WWW-Authenticate: Bearer`` challenge."""

    status_code: ClassVar[int] = 401
    with_error_code: ClassVar[bool] = True

    def __init__(
        self,
        description: str | None = None,
        *,
        detail: str | None = None,
        realm: str = "restaurants",
        scope: str | None = None,
        resource_metadata: str | None = None,
    ) -> None:
        super().__init__(description, detail=detail)
        self.realm = realm
        self.scope = scope
        self.resource_metadata = resource_metadata

    def headers(self) -> dict[str, str]:
        params = [f"realm={_quote(self.realm)}"]
        if self.with_error_code:
            params.append(f"error={_quote(self.error)}")
            if self.description:
                params.append(f"error_description={_quote(self.description)}")
        if self.scope:
            params.append(f"scope={_quote(self.scope)}")
        if self.resource_metadata:
            # RFC 9728 §5.1
            params.append(f"resource_metadata={_quote(self.resource_metadata)}")
        return {"WWW-Authenticate": "Bearer " + ", ".join(params)}


class BearerChallenge(BearerError):
    """No credentials the resource accepts were sent. RFC 6750 §3.1: the challenge SHOULD NOT
    include an error code in this case."""

    error = "unauthorized"
    with_error_code = False


class InvalidBearerRequest(BearerError):
    """The Bearer credentials are malformed or empty. RFC 6750 §3: the challenge is REQUIRED
    when the request "does not include authentication credentials or does not contain an
    access token that enables access"; this error is one of those, so it carries
    ``error="invalid_request"`` in the challenge. A malformed *parameter* of a resource request
    is a plain :class:`InvalidRequest`, without a challenge: it is not about the token."""

    error = "invalid_request"
    status_code = 400


class InvalidToken(BearerError):
    error = "invalid_token"


class MissingToken(InvalidToken):
    """A request that needs a token sent none (the registration endpoints, RFC 7591 §3 and
    RFC 7592 §2): the body says ``invalid_token``; the challenge carries no error code, as
    RFC 6750 §3.1 asks when "the request lacks any authentication information"."""

    with_error_code = False


class InsufficientScope(BearerError):
    error = "insufficient_scope"
    status_code = 403


class RequestTooLarge(ServiceError):
    error = "invalid_request"
    status_code = 413


class Forbidden(ServiceError):
    error = "forbidden"
    status_code = 403


class NotFound(ServiceError):
    error = "not_found"
    status_code = 404


class Conflict(ServiceError):
    """RFC 9110 §15.5.10: the request conflicts with the resource's state (an id or a
    username that is taken)."""

    error = "conflict"
    status_code = 409


class InvalidFields(ServiceError):
    """RFC 9110 §15.5.21 (422): the body parsed, but some fields cannot be accepted. ``fields``
    maps each field name to why; the body carries it beside ``error`` and
    ``error_description``."""

    error = "invalid_request"
    status_code = 422

    def __init__(self, fields: dict[str, str], description: str | None = None) -> None:
        self.fields = {name: _safe_description(why) for name, why in fields.items()}
        first = next(iter(self.fields.items()), ("body", "invalid"))
        super().__init__(description or f"{first[0]}: {first[1]}")

    def body(self) -> dict[str, str]:
        # Rendered as JSON: the one member that is an object, not a string.
        return {**super().body(), "fields": self.fields}  # type: ignore[dict-item]


class MethodNotAllowed(ServiceError):
    error = "invalid_request"
    status_code = 405

    def __init__(self, allowed: str, description: str | None = None) -> None:
        super().__init__(description or f"method not allowed; use {allowed}")
        self.allowed = allowed

    def headers(self) -> dict[str, str]:
        return {"Allow": self.allowed}


class TooManyRequests(ServiceError):
    """RFC 6585 §4: 429 with ``Retry-After``. At a resource server it also carries the Bearer
    challenge (``challenge``), which RFC 6750 §3 allows on any response."""

    error = "too_many_requests"
    status_code = 429

    def __init__(self, retry_after: int, description: str | None = None) -> None:
        super().__init__(description or "too many requests; retry later")
        self.retry_after = max(1, retry_after)
        self.challenge: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {"Retry-After": str(self.retry_after)}
        if self.challenge:
            headers["WWW-Authenticate"] = self.challenge
        return headers


class ServerError(ServiceError):
    error = "server_error"
    status_code = 500


class TemporarilyUnavailable(ServiceError):
    error = "temporarily_unavailable"
    status_code = 503

    def __init__(
        self, description: str | None = None, *, detail: str | None = None, retry_after: int = 5
    ) -> None:
        super().__init__(description or "the service is temporarily unavailable", detail=detail)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
