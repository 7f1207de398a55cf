"""Helpers of the fault-injection tests (crash safety, database outages, shutdown)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from tests.process import CLI


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    secret: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.client_id, self.secret)


DEMO_CLIENT = ClientCredentials("admin", "getroot")


def create_client(env: Mapping[str, str], *args: str) -> ClientCredentials:
    """Register a client with ``oauth-server clients create … --json``."""
    done = subprocess.run(
        [CLI, "clients", "create", "--json", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    return ClientCredentials(created["client_id"], created["client_secret"])


def assert_unavailable(what: str, response: httpx.Response) -> None:
    """The answer to a request the database could not serve: 503 ``temporarily_unavailable``
    with ``Retry-After``, never cached."""
    assert response.status_code == 503, f"{what}: {response.status_code} {response.text}"
    assert response.json()["error"] == "temporarily_unavailable", what
    assert int(response.headers["retry-after"]) > 0, what
    assert response.headers["cache-control"] == "no-store", what
