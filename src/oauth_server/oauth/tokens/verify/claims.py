"""What a verified access token says, and the verifier protocol every format implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["MAX_TOKEN_LENGTH", "AccessClaims", "TokenVerifier"]

# Longer than any token this server issues; a longer one is refused before any parsing.
MAX_TOKEN_LENGTH = 4096


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says (RFC 9068 §2.2 / RFC 7662 §2.2 members)."""

    client_id: str
    subject: str
    scope: frozenset[str]
    issued_at: int
    expires_at: int
    audience: tuple[str, ...] = ()
    issuer: str = ""
    jti: str | None = None
    not_before: int | None = None
    scope_text: str = ""
    """The scope as issued, order kept (for introspection)."""
    token_format: Literal["jwt", "opaque"] = "opaque"


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> AccessClaims:
        """Return the claims of a valid token or raise :class:`InvalidToken`."""
        ...
