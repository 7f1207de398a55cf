"""Request ids and log lines: the id a trusted proxy sent (when sane) or our own, answered in
``X-Request-ID`` and logged; one line per request with the route template, status, latency,
client, user and error; JSON or text; the same from a real server."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path

import httpx
import pytest

from oauth_server.logs import JsonFormatter, TextFormatter
from oauth_server.web.api import FastRouter
from tests.helpers import FORM, SEED_TOKEN_REQUEST, basic
from tests.process import ServerProcess
from tests.signin import code_for, exchange_form, post_token, world

OURS = re.compile(r"[0-9a-f]{12}-[0-9a-f]+")


def _client(app: FastRouter, peer: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def request_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [
        dict(record.fields)  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == "oauth_server.request"
    ]


async def test_every_answer_carries_a_fresh_request_id(app: FastRouter) -> None:
    async with _client(app) as http:
        answers = [
            await http.get("/healthz"),
            await http.get("/healthz"),
            await http.post("/oauth/token", json={"grant_type": "nope"}),
            await http.get("/no/such/path"),  # answered by the fallback
            await http.delete("/healthz"),  # 405
        ]
    ids = [answer.headers["x-request-id"] for answer in answers]
    assert all(OURS.fullmatch(i) for i in ids), ids
    assert len(set(ids)) == len(ids)


async def test_an_untrusted_peer_cannot_choose_its_request_id(app: FastRouter) -> None:
    async with _client(app) as http:
        answer = await http.get("/healthz", headers={"X-Request-ID": "chosen-by-client"})
    assert OURS.fullmatch(answer.headers["x-request-id"])


@pytest.mark.settings(trusted_proxies="10.9.9.9")
@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("0f8fad5b-d9cb-469f-a165-70867728950e", True),
        ("req:42.a_b", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("two words", False),
        ('forged" "status":500', False),
        ("", False),
        ("é", False),
    ],
)
async def test_a_trusted_proxys_request_id_is_kept_when_sane(
    app: FastRouter, sent: str, kept: bool
) -> None:
    async with _client(app, peer="10.9.9.9") as http:
        answer = await http.get("/healthz", headers=[(b"X-Request-ID", sent.encode("utf-8"))])
    returned = answer.headers["x-request-id"]
    if kept:
        assert returned == sent
    else:
        assert OURS.fullmatch(returned), returned


@pytest.mark.settings(access_log=True)
async def test_one_line_per_request_with_its_fields(
    app: FastRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="oauth_server.request")
    await world(app)
    async with _client(app) as http:
        good = await http.post("/oauth/token", json=SEED_TOKEN_REQUEST)
        bad = await http.post("/oauth/token", json={**SEED_TOKEN_REQUEST, "client_secret": "no"})
        user = await post_token(http, exchange_form(await code_for(app)))
        token = good.json()["access_token"]
        api = await http.get(
            "/api/restaurants/5f1a2b3c4d5e6f7a8b9c0d01",
            headers={"Authorization": f"Bearer {token}"},
        )
        missing = await http.get("/no/such/thing")
    assert user.status_code == 200, user.text
    lines = request_lines(caplog)
    assert len(lines) == 5
    by_id = {line["request_id"]: line for line in lines}
    answers = {"good": good, "bad": bad, "user": user, "api": api, "missing": missing}
    line = {name: by_id[answer.headers["x-request-id"]] for name, answer in answers.items()}
    assert set(line["good"]) == {
        "request_id", "method", "route", "status", "latency_ms", "client_id", "user_id", "error",
    }  # fmt: skip
    assert {k: v for k, v in line["good"].items() if k not in ("request_id", "latency_ms")} == {
        "method": "POST",
        "route": "/oauth/token",
        "status": 200,
        "client_id": "admin",
        "user_id": None,
        "error": None,
    }
    latency = line["good"]["latency_ms"]
    assert isinstance(latency, float)
    assert latency > 0
    assert (line["bad"]["status"], line["bad"]["error"], line["bad"]["client_id"]) == (
        401,
        "invalid_client",
        None,  # a client id that did not authenticate is nobody's
    )
    assert (line["user"]["client_id"], line["user"]["user_id"]) == ("spa", "user-alice")
    assert line["api"]["route"] == "/api/restaurants/{restaurant_id}"
    assert line["api"]["client_id"] == "admin"
    assert (line["missing"]["route"], line["missing"]["status"]) == ("unmatched", 404)


async def test_no_request_lines_unless_asked(
    app: FastRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with _client(app) as http:
        assert (await http.get("/healthz")).status_code == 200
    assert request_lines(caplog) == []


def _record(**fields: object) -> logging.LogRecord:
    record = logging.makeLogRecord(
        {"name": "oauth_server.request", "levelno": 20, "levelname": "INFO", "msg": "GET / 200"}
    )
    record.fields = fields
    return record


def test_json_lines() -> None:
    line = JsonFormatter().format(_record(request_id="r-1", status=200, client_id=None))
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["level"] == "info"
    assert parsed["logger"] == "oauth_server.request"
    assert parsed["message"] == "GET / 200"
    assert (parsed["request_id"], parsed["status"], parsed["client_id"]) == ("r-1", 200, None)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", parsed["ts"])
    # A field cannot overwrite the line's own members.
    assert json.loads(JsonFormatter().format(_record(level="forged")))["level"] == "info"
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = _record()
        record.exc_info = sys.exc_info()
    assert "ValueError: boom" in json.loads(JsonFormatter().format(record))["exc"]


def test_text_lines() -> None:
    text = TextFormatter().format(_record(request_id="r-1", status=200, client_id=None))
    assert text.endswith("INFO oauth_server.request: GET / 200 request_id=r-1 status=200")


@pytest.mark.slow
@pytest.mark.parametrize("log_format", ["json", "text"])
async def test_a_real_servers_lines(database_url: str, tmp_path: Path, log_format: str) -> None:
    env = {
        "OAUTH_SERVER_DATABASE_URL": database_url,
        "OAUTH_SERVER_SECRET_KEY_FILE": str(tmp_path / "secret_key"),
        "OAUTH_SERVER_ACCESS_LOG": "true",
        "OAUTH_SERVER_LOG_FORMAT": log_format,
    }
    server = ServerProcess(env, log=tmp_path / "server.log")
    await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            ok = await http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                headers={**FORM, "Authorization": basic("admin", "getroot")},
            )
            assert ok.status_code == 200
    finally:
        await asyncio.to_thread(server.stop)
    output = server.output()
    request_id = ok.headers["x-request-id"]
    if log_format == "text":
        assert f"POST /oauth/token 200 request_id={request_id} method=POST" in output
        assert "client_id=admin" in output
        return
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(r["logger"].startswith("uvicorn") for r in records)  # uvicorn's own too
    (line,) = [r for r in records if r.get("request_id") == request_id]
    assert (line["route"], line["status"], line["client_id"]) == ("/oauth/token", 200, "admin")
    # Background work logs JSON with its fields (the first signing key was created at start).
    assert any(r.get("event") == "signing_key_created" for r in records)
