"""Request parameter parsing shared by every endpoint.

OAuth 2.1 §3.1/§3.2: parameters sent without a value are treated as omitted, parameters MUST
NOT be repeated, unknown parameters are ignored. Bodies are UTF-8
``application/x-www-form-urlencoded``; ``/oauth/token`` also accepts the seed's JSON object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote_plus

from oauth_server.errors import InvalidRequest, InvalidTarget
from oauth_server.oauth.http import OAuthRequest

__all__ = [
    "MAX_PARAM_LENGTH",
    "Params",
    "is_client_id",
    "parse_body",
    "parse_form",
    "parse_json",
    "parse_query",
    "split_urlencoded",
]

Params = Mapping[str, str]

# Generous for every legitimate value (a JWT assertion is the longest), small enough to bound work.
MAX_PARAM_LENGTH = 8192
MAX_PARAMS = 64
# JSON can spell a lone UTF-16 surrogate (``"\\ud800"``), which is no Unicode character: such a
# string cannot be encoded as UTF-8, so it would fail deep inside hashing or storage.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# RFC 6749 Appendix A.1: client-id = *VSCHAR, VSCHAR = %x20-7E. The one definition of what may
# be looked up as a client id: anything else (a NUL, which PostgreSQL cannot store, a control
# character, a non-ASCII letter) names no client, so it is never sent to the database.
_CLIENT_ID = re.compile(r"[\x20-\x7e]+")


def is_client_id(value: str) -> bool:
    """Whether ``value`` has the syntax of a client id (RFC 6749 Appendix A.1)."""
    return _CLIENT_ID.fullmatch(value) is not None


def _collect(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    params: dict[str, str] = {}
    seen: set[str] = set()
    for count, (name, value) in enumerate(pairs):
        if count >= MAX_PARAMS:
            raise InvalidRequest("too many parameters")
        if name in seen:
            if name == "resource":
                # RFC 8707 §2 allows several; a token has one audience here, so refuse the
                # request with the error that RFC defines rather than as malformed.
                raise InvalidTarget("request one resource per token")
            raise InvalidRequest(f"parameter {name!r} must not be repeated")
        seen.add(name)
        if len(value) > MAX_PARAM_LENGTH:
            raise InvalidRequest(f"parameter {name!r} is too long")
        if value:
            params[name] = value
    return params


def _unquote(text: str) -> str:
    # Most values need no decoding; skipping unquote_plus for them halves the parse time.
    if "%" in text or "+" in text:
        return unquote_plus(text, errors="strict")
    return text


def split_urlencoded(text: str) -> Iterable[tuple[str, str]]:
    """Split ``application/x-www-form-urlencoded`` text (a form body or a query string) into
    decoded pairs; percent-encoded bytes that are not UTF-8 raise ``UnicodeDecodeError``."""
    for part in text.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        yield _unquote(name), _unquote(value)


def parse_form(body: bytes) -> dict[str, str]:
    """Parse an ``application/x-www-form-urlencoded`` body (UTF-8, strict)."""
    try:
        return _collect(split_urlencoded(body.decode("utf-8")))
    except UnicodeDecodeError:
        raise InvalidRequest("the request body is not valid UTF-8") from None


def parse_query(query: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Validate already-split query parameters with the same rules as bodies."""
    return _collect(query)


def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    names = [name for name, _ in pairs]
    if len(names) != len(set(names)):
        raise InvalidRequest("a JSON member must not be repeated")
    return dict(pairs)


def parse_json(body: bytes) -> dict[str, str]:
    """Parse the seed's JSON body: one object whose members are strings."""
    if len(body) == 0:
        raise InvalidRequest("the JSON body is empty")
    try:
        data = json.loads(body, object_pairs_hook=_reject_duplicates)
    except (ValueError, RecursionError):
        raise InvalidRequest("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the JSON body must be an object")
    pairs: list[tuple[str, str]] = []
    for name, value in data.items():
        if _SURROGATE.search(name):
            raise InvalidRequest("a JSON member name is not valid Unicode")
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidRequest(f"parameter {name!r} must be a string")
        if _SURROGATE.search(value):
            raise InvalidRequest(f"parameter {name!r} is not valid Unicode")
        pairs.append((name, value))
    return _collect(pairs)


def parse_body(request: OAuthRequest, *, allow_json: bool = False) -> dict[str, str]:
    """Parse a POST body by its content type; anything else is ``invalid_request``."""
    content_type = request.content_type
    if content_type == "application/x-www-form-urlencoded":
        return parse_form(request.body)
    if allow_json and content_type == "application/json":
        return parse_json(request.body)
    accepted = "application/x-www-form-urlencoded" + (" or application/json" if allow_json else "")
    raise InvalidRequest(f"the request body must be {accepted}")
