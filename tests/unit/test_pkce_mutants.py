"""PKCE at the token endpoint decided case by case: the verifier's syntax at its length and
character limits, the RFC 7636 Appendix B vector, and every refusal with its error and message
(kills the mutants of ``oauth/grants/pkce.py``; see ``make mutate``)."""

from __future__ import annotations

import pytest

from oauth_server.errors import InvalidGrant, InvalidRequest, OAuthError
from oauth_server.oauth.grants.pkce import check_verifier_syntax, s256, verify_pkce

# RFC 7636 Appendix B.
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
SYNTAX = "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]"


def test_the_rfc_7636_appendix_b_vector() -> None:
    assert s256(VERIFIER) == CHALLENGE
    assert len(s256("a" * 128)) == 43  # 32 bytes, unpadded


@pytest.mark.parametrize(
    "verifier", [None, "a" * 43, "a" * 128, "AZaz09-._~" * 4 + "xyz", VERIFIER]
)
def test_verifiers_of_the_right_syntax(verifier: str | None) -> None:
    check_verifier_syntax(verifier)


@pytest.mark.parametrize(
    "verifier",
    [
        "",
        "a" * 42,
        "a" * 129,
        "a" * 42 + "+",
        "a" * 42 + "=",
        "a" * 42 + "/",
        "a" * 42 + " ",
        "a" * 42 + "\u00e9",
        "a" * 43 + "\n",
    ],
)
def test_verifiers_of_the_wrong_syntax(verifier: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_verifier_syntax(verifier)
    assert caught.value.description == SYNTAX


def test_the_right_verifier_passes() -> None:
    verify_pkce(challenge=CHALLENGE, method="S256", verifier=VERIFIER, required=True)
    verify_pkce(challenge=CHALLENGE, method="S256", verifier=VERIFIER, required=False)
    # No challenge and no verifier: fine where PKCE is not required.
    verify_pkce(challenge="", method="", verifier=None, required=False)


@pytest.mark.parametrize(
    ("kwargs", "error", "description"),
    [
        (
            {"challenge": "", "method": "", "verifier": VERIFIER, "required": False},
            InvalidRequest,
            "code_verifier sent, but the authorization request had no PKCE",
        ),
        (
            {"challenge": "", "method": "", "verifier": VERIFIER, "required": True},
            InvalidRequest,
            "code_verifier sent, but the authorization request had no PKCE",
        ),
        (
            {"challenge": "", "method": "", "verifier": None, "required": True},
            InvalidGrant,
            "this client must use PKCE",
        ),
        (
            {"challenge": CHALLENGE, "method": "S256", "verifier": None, "required": False},
            InvalidGrant,
            "code_verifier is required for this code",
        ),
        (
            {"challenge": VERIFIER, "method": "plain", "verifier": VERIFIER, "required": False},
            InvalidGrant,
            "unsupported code_challenge_method",
        ),
        (
            {"challenge": CHALLENGE, "method": "s256", "verifier": VERIFIER, "required": False},
            InvalidGrant,
            "unsupported code_challenge_method",
        ),
        (
            {"challenge": CHALLENGE, "method": "S256", "verifier": "a" * 43, "required": True},
            InvalidGrant,
            "code_verifier does not match the code_challenge",
        ),
        (
            # The challenge itself is not a verifier of itself.
            {"challenge": CHALLENGE, "method": "S256", "verifier": CHALLENGE, "required": True},
            InvalidGrant,
            "code_verifier does not match the code_challenge",
        ),
        (
            {"challenge": CHALLENGE[:-1], "method": "S256", "verifier": VERIFIER, "required": True},
            InvalidGrant,
            "code_verifier does not match the code_challenge",
        ),
    ],
)
def test_every_refusal(
    kwargs: dict[str, object], error: type[OAuthError], description: str
) -> None:
    with pytest.raises(OAuthError) as caught:
        verify_pkce(**kwargs)  # type: ignore[arg-type]
    assert type(caught.value) is error
    assert caught.value.description == description
