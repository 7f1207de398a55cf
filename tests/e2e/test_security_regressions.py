"""Bug classes other OAuth servers shipped (../shared/SECURITY.md §3), each as a regression test
where it applies to what exists here. Others live beside the feature they guard:

* JWT algorithm confusion, ``alg: none``, attacker keys in ``jwk``/``jku``/``x5u``/``x5c``,
  ``crit``, unknown ``kid``, oversized tokens: tests/unit/test_jwt_verifier.py and
  tests/e2e/test_token_service_http.py::test_forged_tokens_get_401_invalid_token;
* revocation that swallows a storage error (must be 503, never 200):
  test_token_service_http.py::test_storage_failure_is_503_never_a_false_200;
* parallel single-use operations (exactly one wins): tests/storage/test_contract.py
  ::test_tokens_round_trip_and_single_revocation;
* a deleted or re-keyed client still getting tokens: tests/e2e/test_cli.py
  ::test_cli_changes_reach_a_running_server;
* unknown client vs wrong secret oracle: tests/unit/test_token_endpoint.py
  ::test_unknown_and_wrong_secret_are_indistinguishable.
Not applicable yet (no authorization endpoint, codes, refresh tokens or users): open
redirects, redirect_uri parser tricks, PKCE downgrade, code reuse, refresh reuse.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import FORM, basic, bearer, seed_token
from tests.process import ServerProcess


async def test_reflected_input_cannot_inject_headers_or_break_json(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/oauth/token",
        content="grant_type=x%0d%0aSet-Cookie:%20pwned=1%22%5c&client_id=admin",
        headers=FORM,
    )
    assert response.status_code == 400
    assert "set-cookie" not in response.headers
    description = response.json()["error_description"]
    assert not set(description) & set('\r\n"\\')


async def test_issuer_comes_from_configuration_not_the_host_header(
    client: httpx.AsyncClient,
) -> None:
    metadata = await client.get(
        "/.well-known/oauth-authorization-server", headers={"Host": "evil.example"}
    )
    assert metadata.json()["issuer"] == "http://localhost:8889"
    challenge = await client.get("/restaurentUpdate", headers={"Host": "evil.example"})
    assert "evil.example" not in challenge.headers["www-authenticate"]


async def test_client_cannot_pick_the_document_id(client: httpx.AsyncClient) -> None:
    token = await seed_token(client)
    response = await client.post(
        "/api/restaurants",
        json={"_id": {"$oid": "5f1a2b3c4d5e6f7a8b9c0d01"}, "Name": "x", "Address": "y"},
        headers=bearer(token),
    )
    assert response.status_code == 400


async def test_query_string_token_is_never_accepted(client: httpx.AsyncClient) -> None:
    token = await seed_token(client)
    response = await client.get(f"/api/restaurants?access_token={token}")
    # OAuth 2.1 §5.1: ignored, so this is the public view, not the full one.
    assert response.status_code == 200
    assert "_id" not in response.json()["items"][0]


async def test_bearer_token_is_not_client_authentication(client: httpx.AsyncClient) -> None:
    token = await seed_token(client)
    response = await client.post("/oauth/introspect", data={"token": token}, headers=bearer(token))
    assert response.status_code == 401


async def test_basic_credentials_are_not_a_bearer_token(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/restaurentUpdate",
        params={"id": "0" * 24, "Name": "x"},
        headers={"Authorization": basic("admin", "getroot")},
    )
    assert response.status_code == 401


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        {
            "OAUTH_SERVER_DATABASE_URL": f"sqlite:///{tmp_path}/oauth.db",
            "OAUTH_SERVER_SECRET_KEY": "regression-test-secret-0123456789-abc",
            "OAUTH_SERVER_RATE_LIMIT_AUTH_FAILURES_PER_ADDRESS": "5/minute",
        },
        log=tmp_path / "server.log",
    )
    try:
        yield process.start()
    finally:
        process.stop()


@pytest.mark.slow
def test_spoofed_forwarded_for_does_not_escape_the_address_limit(server: ServerProcess) -> None:
    """Without OAUTH_SERVER_TRUSTED_PROXIES, X-Forwarded-For is ignored (RFC 9700 §4.13)."""
    statuses = [
        httpx.post(
            f"{server.url}/oauth/token",
            data={"grant_type": "client_credentials", "client_id": f"c{i}", "client_secret": "x"},
            headers={"X-Forwarded-For": f"10.0.0.{i}"},
        ).status_code
        for i in range(7)
    ]
    assert statuses == [401] * 5 + [429, 429]
