"""PKCE at the token endpoint (RFC 7636 §4.5, §4.6), composed into the code grant."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from oauth_server.errors import InvalidGrant, InvalidRequest

__all__ = ["check_verifier_syntax", "s256", "verify_pkce"]

# §4.1: code-verifier = 43*128unreserved; unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def check_verifier_syntax(verifier: str | None) -> None:
    if verifier is not None and _VERIFIER.fullmatch(verifier) is None:
        raise InvalidRequest("code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]")


def s256(verifier: str) -> str:
    """§4.2: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))), without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify_pkce(*, challenge: str, method: str, verifier: str | None, required: bool) -> None:
    """Raise unless ``verifier`` proves the stored ``challenge`` (syntax already checked)."""
    if not challenge:
        if verifier is not None:
            # RFC 9700 §4.8.2: a verifier for a code issued without a challenge is a PKCE
            # downgrade attempt; the server MUST refuse it.
            raise InvalidRequest("code_verifier sent, but the authorization request had no PKCE")
        if required:
            raise InvalidGrant("this client must use PKCE")
        return
    if verifier is None:
        raise InvalidGrant("code_verifier is required for this code")
    if method != "S256":  # `plain` is never accepted (the authorization endpoint refuses it)
        raise InvalidGrant("unsupported code_challenge_method")
    # §4.6: compare the transformed verifier with the stored challenge, in constant time.
    if not hmac.compare_digest(s256(verifier).encode("ascii"), challenge.encode("ascii")):
        raise InvalidGrant("code_verifier does not match the code_challenge")
