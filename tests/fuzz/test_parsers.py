"""Property tests for the parsers of the framework-free core.

Each parser takes attacker-controlled text or bytes. The properties: it either returns a value
that satisfies its grammar, or raises the one error the endpoint declares for bad input (which
the renderer turns into a 4xx) — never any other exception, which would become a 500. Valid
input survives the encoding a client applies to it (round trips).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from urllib.parse import quote, quote_plus, urlencode

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from oauth_server.errors import (
    BearerChallenge,
    BearerError,
    InvalidBearerRequest,
    InvalidClient,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    InvalidToken,
    ServiceError,
)
from oauth_server.oauth.client_auth import parse_basic
from oauth_server.oauth.http import OAuthRequest, render_error
from oauth_server.oauth.params import (
    MAX_PARAM_LENGTH,
    MAX_PARAMS,
    parse_body,
    parse_form,
    parse_json,
)
from oauth_server.oauth.scopes import MAX_SCOPES, format_scope, parse_scope, resolve_scope
from oauth_server.oauth.tokens.verify.claims import MAX_TOKEN_LENGTH
from oauth_server.resource.bearer import bearer_token

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 6749 §5.2: error_description = *( %x20-21 / %x23-5B / %x5D-7E )
DESCRIPTION = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
# The longest encoded Basic credentials parse_basic accepts: 4 times its 512-character cap.
MAX_BASIC_ENCODED = 4 * 512

scope_tokens = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='"\\'),
    min_size=1,
    max_size=40,
)
# Text a client can send: any Unicode scalar value (no lone surrogates: they have no UTF-8 form).
unicode_text = st.text(st.characters(codec="utf-8"))
# What an ASGI server hands over for a header value: bytes decoded as latin-1.
header_text = st.text(st.characters(codec="latin-1")) | unicode_text
# Text built from the characters that matter to form decoding, so the interesting cases
# (percent escapes, invalid UTF-8 in them, '+', separators) come up often.
form_like = st.text(st.sampled_from("=&%+aZ09fF éx\x00;"), max_size=60)
# Strings with lone surrogates: JSON can spell them as \udXXX escapes.
any_text = st.text(st.characters(exclude_categories=()))


def assert_renderable(error: ServiceError) -> None:
    """The error renders as the one error shape: a 4xx, a safe description, sendable headers."""
    response = render_error(error)
    assert 400 <= response.status < 500
    body = json.loads(response.body)
    assert isinstance(body["error"], str)
    assert DESCRIPTION.fullmatch(body.get("error_description", ""))
    for name, value in response.headers.items():
        value.encode("latin-1")
        assert "\r" not in value, name
        assert "\n" not in value, name
    if isinstance(error, BearerError):
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    if isinstance(error, InvalidClient):
        assert response.headers["WWW-Authenticate"].startswith("Basic ")


def assert_utf8_text(value: str) -> None:
    """Parsed values are text that can be stored, hashed and logged: valid UTF-8 when encoded."""
    value.encode("utf-8")


# --- scopes (RFC 6749 §3.3) -------------------------------------------------------------------


@given(value=st.none() | unicode_text | st.lists(scope_tokens).map(" ".join))
@example(value=" ".join(f"s{i}" for i in range(MAX_SCOPES + 1)))
@example(value="a" * 129)
@example(value='read "write"')
def test_parse_scope_returns_grammar_tokens_or_invalid_scope(value: str | None) -> None:
    try:
        scopes = parse_scope(value)
    except InvalidScope as error:
        assert_renderable(error)
        return
    assert len(scopes) == len(set(scopes)) <= MAX_SCOPES
    assert all(SCOPE_TOKEN.fullmatch(scope) for scope in scopes)
    if value is not None:
        assert set(scopes) == set(value.split())


@given(
    tokens=st.lists(scope_tokens, min_size=1, max_size=MAX_SCOPES),
    separator=st.sampled_from([" ", "  ", "   "]),
)
def test_parse_scope_round_trips_format_scope(tokens: list[str], separator: str) -> None:
    unique = list(dict.fromkeys(tokens))
    assert parse_scope(format_scope(tokens)) == tuple(unique)
    assert parse_scope(separator + separator.join(tokens) + separator) == tuple(unique)


@given(
    requested=st.none() | unicode_text | st.lists(scope_tokens, max_size=5).map(" ".join),
    allowed=st.frozensets(scope_tokens, max_size=5),
    default=st.lists(scope_tokens, max_size=3, unique=True).map(tuple),
)
def test_resolve_scope_grants_only_allowed_scopes(
    requested: str | None, allowed: frozenset[str], default: tuple[str, ...]
) -> None:
    try:
        granted = resolve_scope(requested, allowed=allowed, default=default)
    except InvalidScope as error:
        assert_renderable(error)
        return
    assert granted
    assert set(granted) <= allowed
    asked = parse_scope(requested)
    assert granted == (asked or default)


@given(
    allowed=st.lists(scope_tokens, min_size=1, max_size=8, unique=True),
    data=st.data(),
)
def test_resolve_scope_accepts_any_subset_of_allowed(
    allowed: list[str], data: st.DataObject
) -> None:
    subset = data.draw(st.lists(st.sampled_from(allowed), min_size=1, unique=True))
    assert resolve_scope(" ".join(subset), allowed=frozenset(allowed), default=()) == tuple(subset)


# --- HTTP Basic client authentication (RFC 6749 §2.3.1) ----------------------------------------

basic_schemes = st.sampled_from(["Basic", "basic", "BASIC", "bAsIc"])
form_encoders: st.SearchStrategy[Callable[[str], str]] = st.sampled_from(
    [
        lambda text: quote_plus(text, safe=""),  # application/x-www-form-urlencoded
        lambda text: quote(text, safe=""),  # percent-encoding only (%20 for space)
    ]
)


def _basic_encoded(client_id: str, secret: str, encode: Callable[[str], str]) -> str:
    raw = f"{encode(client_id)}:{encode(secret)}".encode()
    return base64.b64encode(raw).decode("ascii")


@given(
    client_id=unicode_text,
    secret=unicode_text,
    encode=form_encoders,
    scheme=basic_schemes,
    before=st.sampled_from(["", " ", "  "]),
    between=st.sampled_from([" ", "   "]),
    after=st.sampled_from(["", " ", "\t"]),
)
@example(
    client_id="a:b",
    secret="c:d",
    encode=quote_plus,
    scheme="Basic",
    before="",
    between=" ",
    after="",
)
@example(
    client_id="x+y z",
    secret="%41",
    encode=quote_plus,
    scheme="Basic",
    before="",
    between=" ",
    after="",
)
def test_basic_credentials_round_trip(
    client_id: str,
    secret: str,
    encode: Callable[[str], str],
    scheme: str,
    before: str,
    between: str,
    after: str,
) -> None:
    encoded = _basic_encoded(client_id, secret, encode)
    header = f"{before}{scheme}{between}{encoded}{after}"
    if len(encoded) > MAX_BASIC_ENCODED:
        with pytest.raises(InvalidClient):
            parse_basic(header)
    else:
        assert parse_basic(header) == (client_id, secret)


@given(
    header=header_text
    | basic_schemes.flatmap(lambda s: header_text.map(lambda rest: f"{s} {rest}"))
    | basic_schemes.flatmap(
        lambda s: st.binary(max_size=200).map(lambda raw: f"{s} {base64.b64encode(raw).decode()}")
    )
    | basic_schemes.flatmap(
        lambda s: form_like.map(lambda raw: f"{s} {base64.b64encode(raw.encode()).decode()}")
    )
)
@example(header="Basic")
@example(header="Basic ")
@example(header="Basic Og==")  # ":" — empty id and secret
@example(header="Basic " + base64.b64encode(b"id:%ff").decode())
@example(header="Basic " + base64.b64encode(b"\xff:x").decode())
@example(header="Basic " + base64.b64encode(b"no-colon").decode())
@example(header="Basic " + "QUFB" * 600)
@example(header="Basic w6k6w6k=\u00e9")
def test_basic_garbage_raises_only_invalid_client(header: str) -> None:
    try:
        client_id, secret = parse_basic(header)
    except InvalidClient as error:
        assert_renderable(error)
        return
    assert_utf8_text(client_id)
    assert_utf8_text(secret)


# --- form and JSON bodies (RFC 6749 §3.2, OAuth 2.1 §3.1) --------------------------------------


def _check_params(params: dict[str, str]) -> None:
    assert len(params) <= MAX_PARAMS
    for name, value in params.items():
        assert isinstance(name, str)
        assert isinstance(value, str)
        assert value, "empty values are treated as omitted"
        assert len(value) <= MAX_PARAM_LENGTH
        assert_utf8_text(name)
        assert_utf8_text(value)


@given(body=st.binary(max_size=300) | form_like.map(lambda text: text.encode()))
@example(body=b"a=%ff")
@example(body=b"a=%")
@example(body=b"a=%e9")
@example(body=b"resource=a&resource=b")
@example(body=b"&&&=&")
@example(body=b"\xff=1")
def test_parse_form_raises_only_declared_errors(body: bytes) -> None:
    try:
        params = parse_form(body)
    except (InvalidRequest, InvalidTarget) as error:
        assert_renderable(error)
        return
    _check_params(params)


form_params = st.dictionaries(
    keys=st.text(st.characters(codec="utf-8"), max_size=20),
    values=st.text(st.characters(codec="utf-8"), max_size=60),
    max_size=MAX_PARAMS,
)


@given(params=form_params, quote_via=st.sampled_from([quote_plus, quote]))
@example(
    params={"grant_type": "client_credentials", "scope": "a b", "x": "&=+%"}, quote_via=quote_plus
)
def test_parse_form_round_trips_urlencode(
    params: dict[str, str], quote_via: Callable[..., str]
) -> None:
    body = urlencode(params, quote_via=quote_via).encode("ascii")
    assert parse_form(body) == {name: value for name, value in params.items() if value}


@given(
    pairs=st.lists(
        st.tuples(st.sampled_from(["a", "b", "resource", "scope"]), st.text(max_size=5)),
        min_size=2,
        max_size=8,
    )
)
def test_parse_form_refuses_repeated_parameters(pairs: list[tuple[str, str]]) -> None:
    names = [name for name, _ in pairs]
    assume(len(names) != len(set(names)))
    body = urlencode(pairs).encode()
    with pytest.raises((InvalidRequest, InvalidTarget)) as raised:
        parse_form(body)
    first_repeated = next(name for i, name in enumerate(names) if name in names[:i])
    if first_repeated == "resource":
        assert isinstance(raised.value, InvalidTarget)
    else:
        assert type(raised.value) is InvalidRequest


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | any_text
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=12,
)


@given(
    body=st.binary(max_size=300)
    | json_values.map(lambda value: json.dumps(value).encode())
    | st.dictionaries(any_text, json_values, max_size=6).map(lambda d: json.dumps(d).encode())
    | st.dictionaries(any_text, any_text | st.none(), max_size=6).map(
        lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass")
    )
)
@example(body=b"[" * 100_000)
@example(body=b'{"a": NaN}')
@example(body=b"1" * 5000)
@example(body=b'{"client_secret": "\\ud800"}')
@example(body=b'{"\\udfff": "x"}')
@example(body=b'{"resource": "a", "resource": "b"}')
@example(body=b"\xef\xbb\xbf{}")
@example(body='{"a": "b"}'.encode("utf-16"))
def test_parse_json_raises_only_declared_errors(body: bytes) -> None:
    try:
        params = parse_json(body)
    except (InvalidRequest, InvalidTarget) as error:
        assert_renderable(error)
        return
    _check_params(params)


@given(
    params=st.dictionaries(
        st.text(st.characters(codec="utf-8"), max_size=20),
        st.text(st.characters(codec="utf-8"), max_size=60) | st.none(),
        max_size=MAX_PARAMS,
    ),
    ensure_ascii=st.booleans(),
)
def test_parse_json_round_trips_objects_of_strings(
    params: dict[str, str | None], ensure_ascii: bool
) -> None:
    body = json.dumps(params, ensure_ascii=ensure_ascii).encode()
    assert parse_json(body) == {name: value for name, value in params.items() if value}


content_types = (
    st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=UTF-8",
            "application/json",
            "Application/JSON; charset=utf-8",
            "text/plain",
            "multipart/form-data; boundary=x",
            "",
        ]
    )
    | header_text
)


@given(
    content_type=st.none() | content_types,
    body=st.binary(max_size=200) | form_like.map(str.encode),
    allow_json=st.booleans(),
)
def test_parse_body_raises_only_declared_errors(
    content_type: str | None, body: bytes, allow_json: bool
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    request = OAuthRequest(method="POST", path="/oauth/token", headers=headers, body=body)
    try:
        params = parse_body(request, allow_json=allow_json)
    except (InvalidRequest, InvalidTarget) as error:
        assert_renderable(error)
        return
    _check_params(params)
    assert request.content_type == "application/x-www-form-urlencoded" or (
        allow_json and request.content_type == "application/json"
    )


# --- Bearer tokens (RFC 6750 §2.1) -------------------------------------------------------------

b64tokens = st.from_regex(r"\A[A-Za-z0-9\-._~+/]{1,200}={0,3}\Z")


@given(
    header=header_text
    | st.sampled_from(["Bearer", "bearer", "BEARER"]).flatmap(
        lambda s: header_text.map(lambda rest: f"{s} {rest}")
    )
)
@example(header="Bearer")
@example(header="Bearer ")
@example(header="Bearer a,b")
@example(header="Bearer a b")
@example(header="Bearer ==")
@example(header="Bearer abc, Bearer def")
@example(header="Bearer " + "a" * (MAX_TOKEN_LENGTH + 1))
@example(header="Basic YTpi")
@example(header="Bearer\tabc")
def test_bearer_header_yields_b64token_or_declared_error(header: str) -> None:
    request = OAuthRequest(method="GET", path="/restaurent", headers={"authorization": header})
    try:
        token = bearer_token(request)
    except (BearerChallenge, InvalidBearerRequest, InvalidToken) as error:
        assert_renderable(error)
        return
    assert token is not None, "a request with an Authorization header sent credentials"
    assert len(token) <= MAX_TOKEN_LENGTH
    assert B64TOKEN.fullmatch(token)


@given(
    token=b64tokens,
    scheme=st.sampled_from(["Bearer", "bearer", "BEARER", "bEaReR"]),
    between=st.sampled_from([" ", "  "]),
    after=st.sampled_from(["", " "]),
)
def test_bearer_token_round_trips(token: str, scheme: str, between: str, after: str) -> None:
    headers = {"authorization": f"{scheme}{between}{token}{after}"}
    request = OAuthRequest(method="GET", path="/restaurent", headers=headers)
    assert bearer_token(request) == token


@given(query=st.lists(st.tuples(unicode_text, unicode_text), max_size=3))
def test_no_authorization_header_means_no_token(query: list[tuple[str, str]]) -> None:
    # OAuth 2.1 §5.1: the query-string method is gone; ?access_token= is ignored.
    request = OAuthRequest(
        method="GET", path="/restaurent", query=(("access_token", "abc"), *query)
    )
    assert bearer_token(request) is None
