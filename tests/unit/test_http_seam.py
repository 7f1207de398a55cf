"""OAuthRequest / OAuthResponse and the one error renderer, driven directly."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from oauth_server.errors import (
    AccessDenied,
    AuthorizationError,
    InvalidClient,
    InvalidRequest,
    UnsupportedResponseType,
    UntrustedRedirect,
)
from oauth_server.oauth.http import (
    NO_STORE,
    CookieJar,
    Headers,
    OAuthRequest,
    OAuthResponse,
    RedirectTarget,
    render_error,
)

ISSUER = "https://as.example"


def test_two_set_cookie_headers_survive() -> None:
    jar = CookieJar(secure=False)
    response = OAuthResponse.redirect("https://app.example/cb").with_headers(
        jar.set("session", "abc", max_age=60), jar.delete("interaction")
    )
    assert response.status == 303
    assert response.headers.get_all("set-cookie") == [
        "session=abc; Max-Age=60; Path=/; HttpOnly; SameSite=Lax",
        "interaction=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
    ]


def test_secure_cookies_carry_the_host_prefix() -> None:
    jar = CookieJar.for_issuer(ISSUER)
    name, line = jar.set("session", "abc", max_age=60)
    assert name == "Set-Cookie"
    assert line == "__Host-session=abc; Max-Age=60; Path=/; HttpOnly; SameSite=Lax; Secure"
    request = OAuthRequest("GET", "/", headers={"cookie": "session=evil; __Host-session=abc"})
    assert jar.read(request, "session") == "abc"
    assert CookieJar.for_issuer("http://localhost").read(request, "session") == "evil"


@pytest.mark.parametrize("value", ["a b", "a;b", 'a"b', "a,b", "é", "a\\b"])
def test_cookie_values_outside_rfc_6265_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="RFC 6265"):
        CookieJar(secure=True).set("session", value, max_age=1)


def test_request_cookies_are_parsed_once_and_malformed_pairs_skipped() -> None:
    request = OAuthRequest("GET", "/", headers={"cookie": 'a=1; junk; b="2"; a=3; c=x y'})
    assert request.cookies == {"a": "1", "b": "2"}
    assert request.cookies is request.cookies
    assert OAuthRequest("GET", "/").cookies == {}


def test_redirect_statuses() -> None:
    assert OAuthResponse.redirect("/x", status=302).status == 302
    assert OAuthResponse.redirect("/x").headers["Location"] == "/x"
    with pytest.raises(ValueError, match="302 or 303"):
        OAuthResponse.redirect("/x", status=307)  # type: ignore[arg-type]


def test_html_pages_are_never_cached_nor_framed() -> None:
    page = OAuthResponse.html("<p>hi</p>", status=400)
    assert page.status == 400
    assert page.body == b"<p>hi</p>"
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_json_responses_reuse_constant_headers() -> None:
    # The hot path: no header allocation for a plain JSON answer.
    first = OAuthResponse.json({"a": 1}, no_store=True)
    second = OAuthResponse.json({"b": 2}, no_store=True)
    assert first.headers is second.headers
    assert first.headers == {"Content-Type": "application/json", **dict(NO_STORE)}


def test_headers_compare_with_mappings_and_convert() -> None:
    assert OAuthResponse(200, b"", {"A": "1"}) == OAuthResponse(200, b"", Headers((("A", "1"),)))
    assert Headers((("A", "1"), ("A", "2"))) != {"A": "2"}


def _query(response: OAuthResponse) -> dict[str, list[str]]:
    location = response.headers["Location"]
    return parse_qs(urlsplit(location).query)


def test_authorization_errors_redirect_with_state_and_iss() -> None:
    target = RedirectTarget("https://app.example/cb?keep=1", issuer=ISSUER, state="xyz")
    response = render_error(AccessDenied("the user said no"), target)
    assert response.status == 303
    assert response.headers["Location"].startswith("https://app.example/cb?keep=1&")
    assert _query(response) == {
        "keep": ["1"],
        "error": ["access_denied"],
        "error_description": ["the user said no"],
        "state": ["xyz"],
        "iss": [ISSUER],  # RFC 9207 §2
    }
    assert response.headers["Cache-Control"] == "no-store"


def test_without_state_none_is_sent() -> None:
    response = render_error(
        UnsupportedResponseType(), RedirectTarget("https://app.example/cb", issuer=ISSUER)
    )
    assert _query(response) == {"error": ["unsupported_response_type"], "iss": [ISSUER]}


def test_any_authorization_error_code_can_be_sent() -> None:
    error = AuthorizationError("sign in first", error="login_required")
    response = render_error(error, RedirectTarget("https://app.example/cb", issuer=ISSUER))
    assert _query(response)["error"] == ["login_required"]
    with pytest.raises(ValueError, match="not an error code"):
        AuthorizationError(error='bad"code')


def test_form_post_is_an_auto_submitting_page() -> None:
    target = RedirectTarget(
        "https://app.example/cb", issuer=ISSUER, state='<"&>', response_mode="form_post"
    )
    response = render_error(AccessDenied(), target)
    assert response.status == 200
    page = response.body.decode()
    assert '<form method="post" action="https://app.example/cb">' in page
    assert '<input type="hidden" name="error" value="access_denied">' in page
    assert '<input type="hidden" name="state" value="&lt;&quot;&amp;&gt;">' in page
    assert f'<input type="hidden" name="iss" value="{ISSUER}">' in page
    policy = response.headers["Content-Security-Policy"]
    assert "form-action https://app.example;" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "target", [None, RedirectTarget("https://attacker.example/cb", issuer=ISSUER, state="s")]
)
def test_errors_about_the_client_or_redirect_uri_never_redirect(
    target: RedirectTarget | None,
) -> None:
    # RFC 6749 §4.1.2.1: even with a target at hand, an untrusted redirect is a page.
    response = render_error(UntrustedRedirect("the redirect_uri is not registered"), target)
    assert response.status == 400
    assert "Location" not in dict(response.headers)
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert b"the redirect_uri is not registered" in response.body
    assert b"attacker" not in response.body


def test_an_authorization_error_without_a_target_is_a_page() -> None:
    response = render_error(AccessDenied("no"))
    assert response.status == 400
    assert response.headers["Content-Type"].startswith("text/html")


def test_error_pages_escape_descriptions() -> None:
    response = render_error(UntrustedRedirect("<script>x</script>"))
    assert b"<script>" not in response.body


def test_other_errors_stay_json() -> None:
    response = render_error(InvalidClient(), RedirectTarget("https://app.example/cb", ISSUER))
    assert response.status == 401
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


# RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E.
_ALLOWED = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")


@pytest.mark.parametrize("text", ['quote " back\\slash', "é\nnew line\t", "\x00\x7f"])
def test_descriptions_use_only_the_allowed_characters(text: str) -> None:
    for error in (InvalidRequest(text), AccessDenied(text)):
        assert error.description is not None
        assert _ALLOWED.fullmatch(error.description)
    target = RedirectTarget("https://app.example/cb", issuer=ISSUER)
    description = _query(render_error(AccessDenied(text), target))["error_description"][0]
    assert _ALLOWED.fullmatch(description)
