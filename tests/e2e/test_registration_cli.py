"""``oauth-server registration``: initial access tokens created (value printed once), listed
(never the value), revoked once; bad durations refused; every change audited without the
token. On SQLite and PostgreSQL, through click's runner."""

from __future__ import annotations

import json
from collections.abc import Callable

from click.testing import Result

from oauth_server.crypto import parse_split_token


def test_initial_token_lifecycle(run: Callable[..., Result]) -> None:
    created = run("registration", "create-token", "--max-clients", "3", "--expires-in", "2h",
                  "--description", "mobile team", "--json")  # fmt: skip
    assert created.exit_code == 0, created.output
    token = json.loads(created.stdout)
    assert parse_split_token(token["token"]) is not None
    assert token["max_clients"] == 3
    assert token["expires_at"] - token["created_at"] == 7200
    # Registration is off: the operator is told the token is not accepted yet.
    assert "OAUTH_SERVER_REGISTRATION is 'off'" in created.stderr

    default = run("registration", "create-token", "--json")
    assert json.loads(default.stdout)["max_clients"] == 1  # the setting's default
    assert json.loads(default.stdout)["expires_at"] - json.loads(default.stdout)["created_at"] == (
        7 * 86_400
    )

    listed = run("registration", "list-tokens", "--json")
    assert listed.exit_code == 0, listed.output
    assert token["token"] not in listed.output
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    assert rows[token["id"]]["clients_registered"] == 0
    assert rows[token["id"]]["description"] == "mobile team"
    text = run("registration", "list-tokens")
    assert token["id"] in text.stdout
    assert "active" in text.stdout
    assert token["token"] not in text.stdout

    assert run("registration", "revoke-token", token["id"]).exit_code == 0
    again = run("registration", "revoke-token", token["id"])
    assert again.exit_code == 1
    assert "no active initial access token" in again.output
    assert run("registration", "revoke-token", "zz").exit_code == 1
    rows = {
        row["id"]: row for row in json.loads(run("registration", "list-tokens", "--json").stdout)
    }
    assert rows[token["id"]]["revoked_at"] is not None
    assert "revoked" in run("registration", "list-tokens").stdout

    tail = run("audit", "tail", "-n", "20", "--json")
    assert "initial_access_token_created" in tail.stdout
    assert "initial_access_token_revoked" in tail.stdout
    assert token["token"] not in tail.stdout


def test_bad_options_exit_non_zero(run: Callable[..., Result]) -> None:
    for args in (
        ("--expires-in", "soon"),
        ("--expires-in", "10"),
        ("--expires-in", "400d"),
        ("--max-clients", "0"),
    ):
        result = run("registration", "create-token", *args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
