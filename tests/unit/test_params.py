"""Request-parameter parsing: OAuth 2.1 §3.1/§3.2 rules, table-driven."""

from __future__ import annotations

import pytest

from oauth_server.errors import InvalidRequest
from oauth_server.oauth.http import OAuthRequest
from oauth_server.oauth.params import (
    MAX_PARAM_LENGTH,
    is_client_id,
    parse_body,
    parse_form,
    parse_json,
)


def test_form_decodes_plus_and_percent() -> None:
    assert parse_form(b"a=b+c&d=%C3%A9%20x") == {"a": "b c", "d": "é x"}


def test_empty_values_are_treated_as_absent() -> None:
    assert parse_form(b"grant_type=client_credentials&scope=&x") == {
        "grant_type": "client_credentials"
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"a=1&a=2", "repeated"),
        (b"a=1&a=", "repeated"),
        (b"\xff\xfe=1", "UTF-8"),
        (b"a=%ff", "UTF-8"),
        (b"a=" + b"x" * (MAX_PARAM_LENGTH + 1), "too long"),
        (b"&".join(b"p%d=1" % i for i in range(100)), "too many"),
    ],
)
def test_bad_forms(body: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_form(body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"{", "not valid JSON"),
        (b"[1]", "object"),
        (b'"x"', "object"),
        (b'{"a": 1}', "string"),
        (b'{"a": {"b": "c"}}', "string"),
        (b'{"a": "1", "a": "2"}', "repeated"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON"),
        (b"\xff", "JSON"),
        # Lone UTF-16 surrogates are no text: hashing the secret used to raise (a 500).
        (b'{"client_id": "admin", "client_secret": "\\ud800"}', "not valid Unicode"),
        (b'{"\\udfff": "x"}', "not valid Unicode"),
        (b'{"scope": "a\\udbff\\udbff"}', "not valid Unicode"),
    ],
)
def test_bad_json(body: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_json(body)


def test_json_null_is_absent() -> None:
    assert parse_json(b'{"grant_type": "client_credentials", "scope": null}') == {
        "grant_type": "client_credentials"
    }


@pytest.mark.parametrize(
    ("content_type", "allow_json", "ok"),
    [
        ("application/x-www-form-urlencoded", False, True),
        ("application/x-www-form-urlencoded; charset=UTF-8", False, True),
        ("Application/X-WWW-Form-Urlencoded", False, True),
        ("application/json", True, True),
        ("application/json", False, False),
        ("text/plain", True, False),
        ("multipart/form-data; boundary=x", True, False),
        ("", True, False),
    ],
)
def test_content_types(content_type: str, allow_json: bool, ok: bool) -> None:
    body = b'{"a": "b"}' if "json" in content_type else b"a=b"
    request = OAuthRequest("POST", "/", headers={"content-type": content_type}, body=body)
    if ok:
        assert parse_body(request, allow_json=allow_json) == {"a": "b"}
    else:
        with pytest.raises(InvalidRequest, match="must be"):
            parse_body(request, allow_json=allow_json)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("admin", True),
        ("a b~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}", True),  # every VSCHAR class
        ("\x20", True),
        ("\x7e", True),
        ("", False),
        ("adm\x00in", False),
        ("adm\nin", False),
        ("adm\tin", False),
        ("adm\x7fin", False),
        ("adm\u00e9in", False),
        ("adm\ud800in", False),
    ],
)
def test_client_id_syntax_is_vschar(value: str, ok: bool) -> None:
    # RFC 6749 Appendix A.1: client-id = *VSCHAR, VSCHAR = %x20-7E.
    assert is_client_id(value) is ok
