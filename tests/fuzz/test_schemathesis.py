"""Schemathesis against the OpenAPI document: every documented operation, generated requests.

Every response is checked by Schemathesis' default checks: no 5xx, a status code the operation
documents, the documented content type and body schema, schema-valid requests accepted and
schema-violating ones refused, 405 with ``Allow`` for undocumented methods. Each operation runs
twice: as generated (no credentials, so protected operations mostly answer 401), and with valid
credentials — a bearer token holding every restaurants scope, or HTTP Basic for the demo client
at the OAuth endpoints — so that what lies behind authentication is fuzzed too.

The app runs on SQLite in a temporary directory, in process (through ASGI, rate limits off)
and again as a real ``oauth-server serve`` process reached over TCP, so that the HTTP layer
(httptools parsing, the protocol's limits, the real headers) meets the generated requests too,
with the rate limiter on (its budgets raised so that the run is not locked out after the first
hundred failed authentications). Generation is derandomized by the ``fuzz`` Hypothesis profile
(see conftest.py), so every run sends the same requests.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import settings
from requests.structures import CaseInsensitiveDict
from schemathesis.python import asgi

from oauth_server import __version__
from oauth_server.bootstrap import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_SCOPES
from oauth_server.config import Settings
from oauth_server.web.api import FastRouter
from oauth_server.web.app import build_api, create_app
from tests.process import ServerProcess

BASIC = "Basic " + base64.b64encode(f"{DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}".encode()).decode()
# Each operation runs twice and costs a request per example: half the profile's count keeps the
# whole fuzz suite within its time budget.
EXAMPLES = max(settings().max_examples // 2, 1)


def _settings(directory: Path) -> Settings:
    return Settings(
        env="development",
        database_url=f"sqlite:///{directory}/oauth.db",
        demo_data=True,
        secret_key="fuzz-secret-key-of-at-least-32-characters",
        secret_key_file=directory / "secret_key",
        # The generated requests fail to authenticate by the hundred, and the limits would then
        # answer nearly everything with 429, valid credentials included, hiding what lies behind
        # (tests/e2e/test_rate_limits.py covers the 429s, and that they are documented).
        rate_limits=False,
    )


def _document() -> dict[str, Any]:
    """The document the app serves at /openapi.json, built by the same code (the first test
    checks that the served one is this one). Nothing is written to the directory."""
    app_settings = _settings(Path("unused"))
    return build_api(app_settings).openapi(
        title="PythonOauthServer",
        version=__version__,
        token_url=f"{app_settings.public_issuer}/oauth/token",
    )


CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                # Schemathesis' default list plus 413: a body over OAUTH_SERVER_MAX_BODY_BYTES
                # is refused before it is parsed.
                "expected-statuses": [
                    *("400", "401", "403", "404", "405", "406", "409", "413", "415", "422"),
                    *("428", "429", "5xx"),
                ],
            },
        },
        "operations": [
            {
                # RFC 6749 §5.2 answers well-formed requests naming a scope, resource or grant
                # type the client may not use with 400 (invalid_scope, invalid_target, ...).
                # Which values those are depends on the client, so no schema can tell them
                # from accepted ones.
                "include-path-regex": "^/oauth/",
                "checks": {"positive_data_acceptance": {"enabled": False}},
            },
        ],
    }
)
schema = schemathesis.openapi.from_dict(_document(), config=CONFIG)


def asgi_client(app: FastRouter) -> Any:
    # Schemathesis types an ASGI app's messages as dict; ours take any MutableMapping.
    return asgi.get_client(app)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastRouter]:
    yield create_app(_settings(tmp_path_factory.mktemp("schemathesis")))
    # Schemathesis starts the app's lifespan on its own event-loop thread at the first request;
    # end it here, so the database and the background tasks close with the module.
    asgi.shutdown_lifespans()


@pytest.fixture(scope="module")
def bearer(fuzz_app: FastRouter) -> str:
    with asgi_client(fuzz_app) as http:
        response = http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "scope": " ".join(DEMO_SCOPES)},
            headers={"Authorization": BASIC},
        )
    assert response.status_code == 200, response.text
    return f"Bearer {response.json()['access_token']}"


def test_served_document_is_the_one_tested(fuzz_app: FastRouter) -> None:
    with asgi_client(fuzz_app) as http:
        served = http.get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == _document()


def _with_valid_credentials(case: schemathesis.Case[Any], bearer: str) -> None:
    if case.path.startswith("/oauth/"):
        case.headers = CaseInsensitiveDict({**case.headers, "Authorization": BASIC})
        if isinstance(case.body, dict):
            # One client authentication method per request (OAuth 2.1 §3.2.1): Basic only.
            case.body = {
                name: value
                for name, value in case.body.items()
                if name not in ("client_id", "client_secret")
            }
    elif case.operation.definition.raw.get("security"):
        case.headers = CaseInsensitiveDict({**case.headers, "Authorization": bearer})


def _is_empty_update(case: schemathesis.Case[Any]) -> bool:
    """An update that names no field to change."""
    if case.path == "/restaurentUpdate":
        query = case.query or {}
        # An empty value counts as omitted.
        return not any(query.get(name) for name in ("Name", "Address", "open", "close"))
    if case.method == "PATCH" and isinstance(case.body, dict):
        routine = case.body.get("routine")
        times = routine if isinstance(routine, dict) else {}
        return all(case.body.get(name) is None for name in ("Name", "Address")) and all(
            times.get(name) is None for name in ("open", "close")
        )
    return False


@pytest.mark.parametrize("credentials", ["as generated", "valid"])
@schema.parametrize()
@settings(max_examples=EXAMPLES)
def test_api(
    case: schemathesis.Case[Any], credentials: str, fuzz_app: FastRouter, bearer: str
) -> None:
    if credentials == "valid":
        _with_valid_credentials(case, bearer)
    excluded = []
    if _is_empty_update(case):
        # An update naming no field is refused with 400 on purpose: unknown parameters are
        # ignored, so a misspelt field (?name= for ?Name=) would otherwise be a silent no-op
        # answered "Successful". OpenAPI cannot say "at least one of these parameters".
        excluded.append(schemathesis.checks.positive_data_acceptance)
    case.call_and_validate(app=fuzz_app, excluded_checks=excluded)


# --- the same operations against a real server process -------------------------------------

# Every request pays the network, and with valid credentials a secret hash: an eighth of the
# profile's examples per operation and credentials mode keeps this run to about 20 s.
SERVER_EXAMPLES = max(settings().max_examples // 8, 1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("schemathesis-server")
    process = ServerProcess(
        {
            "OAUTH_SERVER_ENV": "development",
            "OAUTH_SERVER_DATABASE_URL": f"sqlite:///{directory}/oauth.db",
            "OAUTH_SERVER_SECRET_KEY": "fuzz-secret-key-of-at-least-32-characters",
            "OAUTH_SERVER_DEMO_DATA": "true",
            # The issuer (in the document's token URL) of the in-process app, not of this port.
            "OAUTH_SERVER_ISSUER": _settings(directory).public_issuer,
            "OAUTH_SERVER_RATE_LIMIT_AUTH_FAILURES_PER_CLIENT": "1000000/minute",
            "OAUTH_SERVER_RATE_LIMIT_AUTH_FAILURES_PER_ADDRESS": "1000000/minute",
        },
        log=directory / "server.log",
    )
    try:
        yield process.start()
    finally:
        process.stop()
    assert "Traceback" not in process.output()


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        yield http


@pytest.fixture(scope="module")
def server_bearer(server: ServerProcess, session: requests.Session) -> str:
    response = session.post(
        f"{server.url}/oauth/token",
        data={"grant_type": "client_credentials", "scope": " ".join(DEMO_SCOPES)},
        headers={"Authorization": BASIC},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return f"Bearer {response.json()['access_token']}"


@pytest.mark.slow
def test_the_real_server_serves_the_document_tested(
    server: ServerProcess, session: requests.Session
) -> None:
    served = session.get(f"{server.url}/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json() == _document()


@pytest.mark.slow
@pytest.mark.parametrize("credentials", ["as generated", "valid"])
@schema.parametrize()
@settings(max_examples=SERVER_EXAMPLES)
def test_api_through_a_real_server(
    case: schemathesis.Case[Any],
    credentials: str,
    server: ServerProcess,
    session: requests.Session,
    server_bearer: str,
) -> None:
    if credentials == "valid":
        _with_valid_credentials(case, server_bearer)
    excluded = [schemathesis.checks.positive_data_acceptance] if _is_empty_update(case) else []
    case.call_and_validate(
        base_url=server.url, session=session, excluded_checks=excluded, timeout=10
    )
