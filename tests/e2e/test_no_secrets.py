"""No secret or token value ever reaches the audit trail or the logs (SECURITY.md: "no secret
in any log line"): a session handles client secrets (right, wrong, rotated), JWT and opaque
access tokens, then the audit table and every log line are searched for each of them.

In process, the logs are every record at DEBUG level from every logger (caplog); then the
same session runs against a real ``oauth-server serve`` with debug logging and the access log
on, and its stdout/stderr are searched.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import subprocess
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from oauth_server.accounts import AuthenticationFailed
from oauth_server.audit import verify_trail
from oauth_server.cli import main
from oauth_server.clock import SystemClock
from oauth_server.config import Settings
from oauth_server.crypto import new_secret
from oauth_server.logs import JsonFormatter
from oauth_server.services import build_accounts
from oauth_server.storage import open_storage
from oauth_server.web.app import create_app
from tests.conftest import lifespan
from tests.e2e.leaks import leaked, run_session
from tests.helpers import app_services, eventually
from tests.process import CLI, ServerProcess


def every_log_line(caplog: pytest.LogCaptureFixture) -> str:
    """Every record as caplog prints it, as the JSON format writes it (with its fields), and
    its raw arguments."""
    json_format = JsonFormatter()
    return caplog.text + "\n".join(
        f"{json_format.format(record)} {record.getMessage()} {record.args!r} "
        f"{record.exc_text or ''}"
        for record in caplog.records
    )


def test_the_search_finds_what_it_looks_for() -> None:
    assert leaked("a log line with s3cr3t-value in it", ["s3cr3t-value", "other"]) == [
        "s3cr3t… (12 chars)"
    ]


async def test_no_secret_in_audit_trail_or_logs(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = settings.model_copy(
        update={"audit_token_issued": True, "demo_data": False, "access_log": True}
    )
    app = create_app(settings, clock=SystemClock())
    async with lifespan(app):
        services = app_services(app)
        jwt = await services.registry.create(client_id="leak-jwt", scopes=["restaurants:read"])
        opaque = await services.registry.create(
            client_id="leak-opaque", scopes=["restaurants:read"], token_format="opaque"
        )
        assert jwt.secret is not None
        assert opaque.secret is not None

        async def rotate(client_id: str) -> str:
            rotated = await services.registry.rotate_secret(client_id)
            assert rotated is not None
            assert rotated.secret is not None
            return rotated.secret

        async def no_wait() -> None:  # the rotating process drops its cached client at once
            return None

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            session = await run_session(
                http,
                jwt_client=("leak-jwt", jwt.secret),
                opaque_client=("leak-opaque", opaque.secret),
                rotate=rotate,
                sync_wait=no_wait,
            )
            # A request id chosen by an untrusted client is not believed, so not logged.
            planted = new_secret()
            session.secrets.append(planted)
            assert (await http.get("/healthz", headers={"X-Request-ID": planted})).is_success
            metrics = (await http.get("/metrics")).text
        await services.keys.rotate(immediately=True)

    storage = open_storage(settings.database_url)
    try:
        rows = await storage.audit.scan(after=None, limit=100_000)
        assert all(report.ok for report in await verify_trail(storage.audit))
    finally:
        await storage.close()
    audit = "\n".join(f"{r.chain_id} {r.seq} {r.kind} {r.data} {r.digest.hex()}" for r in rows)
    logs = every_log_line(caplog)
    # The haystacks are the right ones: what should be there is.
    assert '"route":"/oauth/introspect","status":200,"latency_ms"' in logs
    assert 'client_id="leak-jwt"' in metrics
    assert leaked(metrics, session.secrets) == []
    assert "client_auth_failed" in audit
    assert "token_issued" in audit
    for identifier in session.identifiers:
        assert identifier in audit
    assert "client leak-jwt asked to revoke a token of client leak-opaque" in logs
    assert leaked(audit, session.secrets) == []
    assert leaked(logs, session.secrets) == []


async def test_no_user_password_or_hash_in_audit_trail_or_logs(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Users' passwords (set, right, wrong, for an unknown user, changed, of a disabled
    user) and their argon2id hashes appear in neither the audit trail nor any log record."""
    caplog.set_level(logging.DEBUG)
    app = create_app(settings, clock=SystemClock())
    async with lifespan(app):
        services = app_services(app)
        accounts = build_accounts(settings, services.storage, services.clock, audit=services.audit)
        first, wrong, unknown, second = (f"{new_secret()}-{n}" for n in range(4))
        try:
            user = await accounts.create("leaky", first, name="Leaky User")
            await accounts.authenticate("leaky", first)
            for username, password in (("leaky", wrong), ("nobody", unknown)):
                with pytest.raises(AuthenticationFailed):
                    await accounts.authenticate(username, password)
            await accounts.set_password(user.user_id, second)
            await accounts.set_disabled(user.user_id, True)
            with pytest.raises(AuthenticationFailed):
                await accounts.authenticate("leaky", second)
            changed = await services.storage.users.get(user_id=user.user_id)
            assert changed is not None
            await accounts.delete(user.user_id)
        finally:
            accounts.hashing.close()
    storage = open_storage(settings.database_url)
    try:
        rows = await storage.audit.scan(after=None, limit=100_000)
    finally:
        await storage.close()
    audit = "\n".join(f"{r.kind} {r.data}" for r in rows)
    logs = every_log_line(caplog)
    ours = "\n".join(
        f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        for record in caplog.records
        if not record.name.startswith("aiosqlite")
    )
    assert user.user_id in audit  # the haystacks are the right ones
    assert "user_password_changed" in audit
    assert "created the demo user" in ours
    passwords = [first, wrong, unknown, second]
    hashes = [user.password_hash, changed.password_hash]
    assert leaked(audit, passwords + hashes) == []
    assert leaked(logs, passwords) == []
    # The hashes are in one place only: aiosqlite's DEBUG trace of statement parameters
    # (a driver's own logger, as for client secrets' hashes; never enabled by the server).
    assert leaked(ours, hashes) == []


async def test_no_sign_in_secret_in_logs_or_metrics(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The browser sign-in with every log line on: the password (right and wrong), the CSRF
    token, the session cookie, the code and the tokens it gives (access, refresh, rotated
    refresh, ID token) appear in no log line and no metric."""
    from tests.signin import (
        PASSWORD,
        REDIRECT_URI,
        App,
        authorize_page,
        ensure_user,
        full_flow,
        login,
        pkce_pair,
        query_of,
        read_form,
    )

    caplog.set_level(logging.DEBUG)
    app = create_app(settings.model_copy(update={"access_log": True}), clock=SystemClock())
    async with lifespan(app):
        services = app_services(app)
        await ensure_user(services)
        created = await services.registry.create(
            name="Leaky app",
            grant_types=("authorization_code", "refresh_token"),
            scopes=("openid", "offline_access", "restaurants:read"),
            client_type="public",
            redirect_uris=(REDIRECT_URI,),
        )
        client = App(created.client.client_id)
        scope = {"scope": "openid offline_access restaurants:read"}
        verifier, challenge = pkce_pair()
        wrong = new_secret()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            page = await authorize_page(http, client, challenge, **scope)
            form = read_form((await http.get(page)).text)
            assert (await login(http, page, password=wrong)).status_code == 400
            code = query_of(await full_flow(http, client, challenge, **scope))["code"]
            cookies = [cookie.value for cookie in http.cookies.jar]
            tokens = await http.post("/oauth/token", data={
                "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                "redirect_uri": client.redirect_uri, "client_id": client.client_id})  # fmt: skip
            assert tokens.status_code == 200, tokens.text
            issued = tokens.json()
            rotated = await http.post("/oauth/token", data={
                "grant_type": "refresh_token", "refresh_token": issued["refresh_token"],
                "client_id": client.client_id})  # fmt: skip
            assert rotated.status_code == 200, rotated.text
            access = issued["access_token"]
            userinfo = await http.get(
                "/oauth/userinfo", headers={"Authorization": f"Bearer {access}"}
            )
            assert userinfo.status_code == 200
            metrics = (await http.get("/metrics")).text
    secrets = [
        PASSWORD, wrong, form.fields["csrf_token"], code, verifier, *cookies,
        access, access.rsplit(".", 1)[1], issued["refresh_token"], issued["id_token"],
        issued["id_token"].rsplit(".", 1)[1], rotated.json()["refresh_token"],
    ]  # fmt: skip
    assert cookies  # the haystacks are the right ones
    logs = every_log_line(caplog)
    assert '"route":"/signin/{uid}/login","status":400' in logs
    assert '"route":"/oauth/token","status":200,"latency_ms"' in logs
    assert 'outcome="login_failed"' in metrics
    assert leaked(logs, secrets) == []
    assert leaked(metrics, secrets) == []


@pytest.mark.slow
async def test_no_secret_in_a_real_servers_output_or_audit_trail(
    database_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "OAUTH_SERVER_DATABASE_URL": database_url,
        "OAUTH_SERVER_SECRET_KEY_FILE": str(tmp_path / "secret_key"),
        "OAUTH_SERVER_DEMO_DATA": "false",
        "OAUTH_SERVER_LOG_LEVEL": "debug",
        "OAUTH_SERVER_ACCESS_LOG": "true",
        "OAUTH_SERVER_LOG_FORMAT": "json",
        "OAUTH_SERVER_WORKERS": "2",
        "OAUTH_SERVER_AUDIT_TOKEN_ISSUED": "true",
        "OAUTH_SERVER_CACHE_SYNC_INTERVAL": "0.1",
    }

    async def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run, [CLI, *args], env=env, capture_output=True, text=True, check=True
        )

    async def create(client_id: str, *options: str) -> tuple[str, str]:
        result = await cli(
            "clients", "create", "--client-id", client_id, "--scope", "restaurants:read",
            *options, "--json",
        )  # fmt: skip
        return client_id, json.loads(result.stdout)["client_secret"]

    jwt_client = await create("leak-jwt")
    opaque_client = await create("leak-opaque", "--token-format", "opaque")

    async def rotate(client_id: str) -> str:  # by another process, as an operator would
        result = await cli("clients", "rotate-secret", client_id, "--json")
        secret: str = json.loads(result.stdout)["client_secret"]
        return secret

    async def sync_wait() -> None:  # until the server's cache sync has seen the rotation
        async def old_secret_refused() -> bool:
            response = await http.post("/oauth/introspect", data={"token": "x"}, auth=jwt_client)
            return response.status_code == 401

        await eventually(old_secret_refused, within=5)

    server = ServerProcess(env, log=tmp_path / "server.log")
    await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            session = await run_session(
                http,
                jwt_client=jwt_client,
                opaque_client=opaque_client,
                rotate=rotate,
                sync_wait=sync_wait,
            )

            scraped: list[str] = []

            async def metrics_counted() -> bool:  # the workers' sums have been flushed
                scraped.append((await http.get("/metrics")).text)
                return 'error="invalid_client"' in scraped[-1]

            await eventually(metrics_counted, within=5)
            metrics = scraped[-1]
    finally:
        await asyncio.to_thread(server.stop)  # the audit buffer is written at shutdown
    output = server.output()
    assert leaked(metrics, session.secrets) == []
    runner = CliRunner()
    tail = ["audit", "tail", "-n", "100000", "--json"]
    audit = (await asyncio.to_thread(runner.invoke, main, tail, env=env)).stdout
    verified = await asyncio.to_thread(runner.invoke, main, ["audit", "verify"], env=env)
    assert verified.exit_code == 0
    assert "every chain verifies" in verified.output

    # The request log was on, in JSON.
    assert '"method":"POST","route":"/oauth/token","status":401' in output
    assert "token_issued" in audit
    assert "client_auth_failed" in audit
    for identifier in session.identifiers:
        assert identifier in audit
    assert leaked(output, session.secrets) == []
    assert leaked(audit, session.secrets) == []


@pytest.mark.slow
@pytest.mark.postgres
async def test_no_database_password_in_a_real_servers_output(
    postgres_url: str, tmp_path: Path
) -> None:
    # Issue 8 finding 5: the banner printed the database URL with its password, in production
    # too. (The test PostgreSQL trusts local connections, so any password connects.)
    password = "pw-" + secrets.token_hex(12)
    url = make_url(postgres_url).set(password=password).render_as_string(hide_password=False)
    env = {
        **os.environ,
        "OAUTH_SERVER_DATABASE_URL": url,
        "OAUTH_SERVER_ENV": "production",
        "OAUTH_SERVER_ISSUER": "https://auth.example",
        "OAUTH_SERVER_SECRET_KEY": "no-secrets-test-secret-key-0123456789",
        "OAUTH_SERVER_LOG_LEVEL": "debug",
        "OAUTH_SERVER_ACCESS_LOG": "true",
    }
    server = ServerProcess(env, log=tmp_path / "server.log")
    await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/readyz")).status_code == 200
            assert (await http.post("/oauth/token", data={"grant_type": "x"})).status_code == 400
    finally:
        await asyncio.to_thread(server.stop)

    def cli(*args: str, url: str = url) -> str:
        result = subprocess.run(
            [CLI, *args],
            env={**env, "OAUTH_SERVER_DATABASE_URL": url},
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout + result.stderr

    unreachable = make_url(url).set(port=1).render_as_string(hide_password=False)
    outputs = {
        "serve": server.output(),
        "config": await asyncio.to_thread(cli, "config"),
        "db upgrade": await asyncio.to_thread(cli, "db", "upgrade"),
        "unreachable database": await asyncio.to_thread(cli, "clients", "list", url=unreachable),
    }
    for what, output in outputs.items():
        assert leaked(output, [password]) == [], what
    # The haystacks are the right ones: the banner and the error name the database.
    assert "Issuer: https://auth.example" in outputs["serve"]
    masked = f"postgresql://{make_url(url).username}:***@"
    assert masked in outputs["serve"]
    assert f"cannot reach the database {masked}" in outputs["unreachable database"]


async def test_no_admin_api_secret_in_audit_trail_or_logs(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the admin API: a client's secret (created, rotated), the admin token, a user's
    password (created, reset) appear only in the responses that hand them out — never in the
    audit trail or any log record."""
    caplog.set_level(logging.DEBUG)
    app = create_app(settings, clock=SystemClock())
    async with lifespan(app):
        services = app_services(app)
        ops = await services.registry.create(client_id="leak-ops", admin=True)
        assert ops.secret is not None
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            issued = await http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=("leak-ops", ops.secret),
            )
            token = issued.json()["access_token"]
            admin = {"Authorization": f"Bearer {token}"}
            created = await http.post(
                "/admin/api/clients", headers=admin, json={"client_id": "leak-api"}
            )
            first = created.json()["client_secret"]
            rotated = await http.post("/admin/api/clients/leak-api/secret", headers=admin)
            second = rotated.json()["client_secret"]
            wrong = await http.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=("leak-api", first)
            )
            assert wrong.status_code in (200, 401)  # refused once the rotation is seen
            password, new_password = f"{new_secret()}-a", f"{new_secret()}-b"
            user = await http.post(
                "/admin/api/users",
                headers=admin,
                json={"username": "leaky-api", "password": password},
            )
            user_id = user.json()["user_id"]
            reset = await http.put(
                f"/admin/api/users/{user_id}/password",
                headers=admin,
                json={"password": new_password},
            )
            assert reset.status_code == 204
            refused = await http.post(
                "/admin/api/users", headers=admin, json={"username": "x y", "password": password}
            )
            assert refused.status_code == 422
            assert password not in refused.text
    storage = open_storage(settings.database_url)
    try:
        rows = await storage.audit.scan(after=None, limit=100_000)
    finally:
        await storage.close()
    audit = "\n".join(f"{r.kind} {r.data}" for r in rows)
    logs = caplog.text + "\n".join(
        f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        for record in caplog.records
    )
    assert "client_secret_rotated" in audit  # the haystacks are the right ones
    assert '"actor_client_id":"leak-ops"' in audit
    assert user_id in audit
    secrets_ = [ops.secret, token, first, second, password, new_password]
    assert leaked(audit, secrets_) == []
    assert leaked(logs, secrets_) == []
