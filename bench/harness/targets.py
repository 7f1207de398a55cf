"""The servers under test. A Target says how to start a server and which loads it serves.

To add a server: write a factory returning a Target (see python_server_target) and list it in
default_targets(); bench/run.py's plans say which scenarios each target runs by default. Each
scenario maps to a function building its Load; it runs once the server is ready, just before
each measurement, so it may fetch a fresh token or create a client. Our server's targets name
their database, which the run creates (and fills, for a loaded one) before starting them.
"""

import functools
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from importlib.util import find_spec
from pathlib import Path
from typing import Literal

from . import BENCH_DIR, OAUTH_SERVER_CLI, REPO_DIR, garbage
from .databases import (
    POSTGRES_SERVER,
    Database,
    postgres_database,
    postgres_version,
    sqlite_database,
)
from .dataset import DatasetSize
from .loads import (
    SCOPE,
    Load,
    LoadError,
    Scenario,
    bearer_each,
    bearer_get,
    fetch_token,
    introspect,
    introspect_each,
    plain_get,
    token_basic,
    token_each,
    token_post,
)
from .signin import (
    NODE_CLIENT,
    PASSWORD,
    PYTHON_SCOPE,
    REDIRECT_URI,
    REFRESH_POOL_PER_CONNECTION,
    SignInParty,
    code_load,
    codes_needed,
    logins_beside,
    node_codes,
    python_codes,
    redeem,
    refresh_load,
    write_lines,
)

NODE_DIR = BENCH_DIR / "node"


class Role(Enum):
    REFERENCE = "reference"  # node-oidc-provider: the "vs node" column divides by it
    CANDIDATE = "candidate"  # our server
    CEILING = "ceiling"  # bare ASGI: the "vs ceiling" column divides by it


@dataclass(frozen=True)
class Target:
    key: str  # the name --targets takes
    server: str  # "server" column
    config: str  # "config" column
    role: Role
    argv: tuple[str, ...]
    env: Mapping[str, str]  # added to the inherited environment
    cwd: Path
    port: int
    ready_path: str  # GET answering 2xx once the server serves
    loads: Mapping[Scenario, Callable[[], Load]]
    missing: str | None = None  # why this target cannot run on this machine
    workers: int = 1
    database: Database | None = None  # our server's; provisioned by the run
    loaded: bool = False  # the database holds the scale data set before the server starts

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def node_binary() -> str:
    """The Node.js 22 LTS pinned in bench/node where its platform package installs, else PATH's."""
    pinned = NODE_DIR / "node_modules" / ".bin" / "node"
    return str(pinned) if pinned.exists() else shutil.which("node") or "node"


def oidc_provider_version() -> str | None:
    manifest = NODE_DIR / "node_modules" / "oidc-provider" / "package.json"
    if not manifest.exists():
        return None
    version: str = json.loads(manifest.read_text())["version"]
    return version


def node_target(tokens: Literal["jwt", "opaque"], port: int, run: "SignInRun") -> Target:
    """node-oidc-provider, one process, in-memory adapter, issuing access tokens of one format.
    The JWT one also serves the sign-in scenarios: its in-memory store is made large enough
    for the codes issued ahead of a measurement (STORE_SIZE; bench/node/server.mjs)."""
    loads: dict[Scenario, Callable[[], Load]]
    env = {"PORT": str(port), "FORMAT": tokens, "NODE_ENV": "production"}
    if tokens == "jwt":
        env["STORE_SIZE"] = "2000000"

        def node_refresh() -> Load:
            codes = node_codes(port, run.refresh_pool)
            refresh = [redeem(port, "/token", NODE_CLIENT, code) for code in codes]
            return refresh_load(
                "/token", write_lines(run.file("node-refresh"), refresh), NODE_CLIENT
            )

        loads = {
            Scenario.CC_JWT_POST: lambda: token_post("/token", "admin", "getroot"),
            Scenario.CC_JWT_BASIC: lambda: token_basic("/token", "admin-basic", "getroot"),
            Scenario.CODE: lambda: code_load(
                "/token",
                write_lines(run.file("node-codes"), node_codes(port, run.codes)),
                NODE_CLIENT,
            ),
            Scenario.REFRESH: node_refresh,
        }
    else:
        loads = {
            Scenario.CC_OPAQUE_POST: lambda: token_post("/token", "admin", "getroot"),
            Scenario.CC_OPAQUE_BASIC: lambda: token_basic("/token", "admin-basic", "getroot"),
            # node-oidc-provider refuses to introspect JWT access tokens, so opaque it is.
            Scenario.INTROSPECT: lambda: introspect(
                "/token/introspection",
                fetch_token(port, "/token", "admin", "getroot"),
                "admin",
                "getroot",
            ),
        }
    version = oidc_provider_version()
    return Target(
        key=f"node-{tokens}",
        server=f"node-oidc-provider {version or '?'}",
        config=f"{tokens} tokens, 1 process, in-memory",
        role=Role.REFERENCE,
        argv=(node_binary(), "server.mjs"),
        env=env,
        cwd=NODE_DIR,
        port=port,
        ready_path="/.well-known/openid-configuration",
        loads=loads,
        missing=None if version else "bench/node/node_modules missing: run bench/setup.sh",
    )


def ceiling_target(workers: int, port: int) -> Target:
    """The bare ASGI hello-world under uvicorn + uvloop + httptools. With 2 workers it shows
    what a second process can gain on this machine at all, with wrk on the same cores."""
    absent = [name for name in ("uvicorn", "uvloop", "httptools") if find_spec(name) is None]
    return Target(
        key="ceiling" if workers == 1 else f"ceiling-w{workers}",
        server="bare ASGI (ceiling)",
        config=f"uvicorn, {workers} process{'es' if workers > 1 else ''}, uvloop + httptools",
        role=Role.CEILING,
        argv=(
            sys.executable,
            "-m",
            "uvicorn",
            "ceiling_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
            "--workers",
            str(workers),
        ),
        env={},
        cwd=BENCH_DIR,
        port=port,
        ready_path="/",
        loads={Scenario.CEILING: lambda: plain_get("/")},
        missing=f"not importable here: {', '.join(absent)}" if absent else None,
        workers=workers,
    )


@dataclass(frozen=True)
class SignInRun:
    """What the sign-in scenarios of a run share: where their files go and how many codes and
    refresh tokens a measurement needs."""

    workdir: Path
    seconds: int  # the longest wrk run (warm-up or measurement)
    connections: int

    @property
    def codes(self) -> int:
        return codes_needed(self.seconds + 1)

    @property
    def refresh_pool(self) -> int:
        return self.connections * REFRESH_POOL_PER_CONNECTION

    def file(self, name: str) -> Path:
        return self.workdir / f"{name}-{os.urandom(4).hex()}.txt"


@dataclass(frozen=True)
class PythonRun:
    """What every PythonOauthServer target of a run shares."""

    secret_key: str  # the same OAUTH_SERVER_SECRET_KEY for all workers and CLI calls
    workdir: Path  # where the garbage scenarios' token files go
    unknown_tokens: Path  # introspect-unknown: current-format tokens another key minted
    legacy_tokens: Path  # introspect-legacy-unknown: old-format tokens issued "now"
    refresh_garbage: Path  # refresh-garbage's values, one per line
    code_garbage: Path  # code-garbage's
    postgres: str | None  # PostgreSQL's version, None when it does not answer
    signin: SignInRun


def python_run(workdir: Path, signin: SignInRun) -> PythonRun:
    return PythonRun(
        secrets.token_urlsafe(32),
        workdir,
        garbage.write(workdir / "unknown-tokens.txt", garbage.unknown("access_token")),
        garbage.write(workdir / "legacy-tokens.txt", garbage.legacy_unknown()),
        garbage.write(workdir / "refresh-garbage.txt", garbage.mixed(None, "refresh_token")),
        garbage.write(workdir / "code-garbage.txt", garbage.mixed(None, "authorization_code")),
        postgres_version(),
        signin,
    )


_PUBLIC_REDIRECT = "http://127.0.0.1:9/callback"
_VERIFIER = "v" * 43  # a well-formed PKCE verifier (RFC 7636 §4.1)


def python_server_target(
    workers: int, database: Database, port: int, run: PythonRun, *, loaded: bool = False
) -> Target:
    """PythonOauthServer: `oauth-server serve` in development mode (demo client admin/getroot);
    a loaded target's database gets the scale data set (harness.dataset) before it starts."""
    env = {
        "OAUTH_SERVER_DATABASE_URL": database.url,
        "OAUTH_SERVER_ENV": "development",
        "OAUTH_SERVER_SECRET_KEY": run.secret_key,
        # The garbage bearer scenarios measure the token check, not the limiter that answers
        # 429 to one address after 100 refused bearers a minute (wrk is one address).
        "OAUTH_SERVER_RATE_LIMIT_BEARER_FAILURES_PER_ADDRESS": "1000000000/minute",
    }

    def create_client(*options: str) -> dict[str, str]:
        # A fresh id each run, so a database that outlives the run never holds it already.
        argv = [
            str(OAUTH_SERVER_CLI),
            "clients",
            "create",
            "--client-id",
            f"bench-{os.urandom(4).hex()}",
            *options,
            "--json",
        ]
        done = subprocess.run(
            argv, env=os.environ | env, cwd=REPO_DIR, capture_output=True, text=True, check=False
        )
        try:
            created: dict[str, str] = json.loads(done.stdout) if done.returncode == 0 else {}
            created["client_id"]
        except (ValueError, KeyError) as error:
            raise LoadError(f"oauth-server clients create failed: {done.stderr.strip()}") from error
        return created

    @functools.cache
    def opaque_client() -> tuple[str, str]:
        created = create_client(
            "--grant-type", "client_credentials", "--scope", SCOPE, "--token-format", "opaque"
        )
        return created["client_id"], created["client_secret"]

    @functools.cache
    def public_client() -> str:
        """A public client of the user grants, for the token endpoint's garbage scenarios."""
        return create_client("--public", "--redirect-uri", _PUBLIC_REDIRECT)["client_id"]

    def opaque_token() -> str:
        return fetch_token(port, "/oauth/token", *opaque_client())

    def cli(*args: str) -> dict[str, object]:
        done = subprocess.run(
            [str(OAUTH_SERVER_CLI), *args, "--json"],
            env=os.environ | env,
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            check=False,
            input=PASSWORD + "\n",
        )
        try:
            answer: dict[str, object] = json.loads(done.stdout) if done.returncode == 0 else {}
            return answer
        except ValueError as error:
            raise LoadError(f"oauth-server {args[0]} {args[1]} failed: {done.stderr}") from error

    @functools.cache
    def signin_party() -> SignInParty:
        suffix = os.urandom(4).hex()
        client = cli(
            "clients", "create", "--public", "--client-id", f"bench-spa-{suffix}",
            "--redirect-uri", REDIRECT_URI, "--grant-type", "authorization_code",
            "--grant-type", "refresh_token", "--scope", PYTHON_SCOPE, "--skip-consent",
        )  # fmt: skip
        user = cli("users", "create", f"bench-{suffix}", "--password-stdin")
        if not client.get("client_id") or not user.get("user_id"):
            raise LoadError("could not create the sign-in client and user")
        return SignInParty(str(client["client_id"]), str(user["user_id"]), f"bench-{suffix}")

    def code_redemption() -> Load:
        party = signin_party()
        codes = python_codes(database, party, run.signin.codes, run.secret_key)
        codes_file = write_lines(run.signin.file(f"codes-{database.backend}"), codes)
        return code_load("/oauth/token", codes_file, party.client_id)

    def refresh_rotation() -> Load:
        party = signin_party()
        codes = python_codes(database, party, run.signin.refresh_pool, run.secret_key)
        refresh = [redeem(port, "/oauth/token", party.client_id, code) for code in codes]
        tokens_file = write_lines(run.signin.file(f"refresh-{database.backend}"), refresh)
        return refresh_load("/oauth/token", tokens_file, party.client_id)

    def introspect_opaque() -> Load:
        return introspect("/oauth/introspect", opaque_token(), *opaque_client())

    def revoke_revoked() -> Load:
        # The first request revokes it; every later one looks the revoked token up (RFC 7009
        # §2.2: 200 all the same).
        return introspect("/oauth/revoke", opaque_token(), *opaque_client())

    def garbage_file(name: str) -> Path:
        """Unknown, random, truncated and forged values in turn, from a fresh real token."""
        values = garbage.mixed(opaque_token(), "access_token")
        return garbage.write(run.workdir / f"{name}-{port}.txt", values)

    loads: dict[Scenario, Callable[[], Load]] = {
        Scenario.CC_JWT_POST: lambda: token_post("/oauth/token", "admin", "getroot"),
        Scenario.CC_JWT_BASIC: lambda: token_basic("/oauth/token", "admin", "getroot"),
        Scenario.CC_OPAQUE_POST: lambda: token_post("/oauth/token", *opaque_client()),
        Scenario.CC_OPAQUE_BASIC: lambda: token_basic("/oauth/token", *opaque_client()),
        Scenario.INTROSPECT: introspect_opaque,
        Scenario.INTROSPECT_UNKNOWN: lambda: introspect_each(
            "/oauth/introspect", run.unknown_tokens, *opaque_client()
        ),
        Scenario.INTROSPECT_GARBAGE: lambda: introspect_each(
            "/oauth/introspect", garbage_file("introspect"), *opaque_client()
        ),
        Scenario.INTROSPECT_LEGACY_UNKNOWN: lambda: introspect_each(
            "/oauth/introspect", run.legacy_tokens, *opaque_client()
        ),
        Scenario.REVOKE: revoke_revoked,
        Scenario.REVOKE_GARBAGE: lambda: introspect_each(
            "/oauth/revoke", garbage_file("revoke"), *opaque_client()
        ),
        Scenario.RESOURCE_GET: lambda: bearer_get(
            "/api/restaurants", fetch_token(port, "/oauth/token", "admin", "getroot")
        ),
        Scenario.CODE: code_redemption,
        Scenario.REFRESH: refresh_rotation,
        Scenario.CC_JWT_LOGINS: lambda: logins_beside(
            token_post("/oauth/token", "admin", "getroot"), port, signin_party()
        ),
        Scenario.RESOURCE_GET_OPAQUE: lambda: bearer_get("/api/restaurants", opaque_token()),
        Scenario.RESOURCE_GET_GARBAGE: lambda: bearer_each(
            "/api/restaurants", garbage_file("bearer"), expect=401
        ),
        Scenario.REFRESH_GARBAGE: lambda: token_each(
            "/oauth/token",
            run.refresh_garbage,
            grant_type="refresh_token",
            param="refresh_token",
            client_id=public_client(),
        ),
        Scenario.CODE_GARBAGE: lambda: token_each(
            "/oauth/token",
            run.code_garbage,
            grant_type="authorization_code",
            param="code",
            client_id=public_client(),
            extra={"redirect_uri": _PUBLIC_REDIRECT, "code_verifier": _VERIFIER},
        ),
    }
    missing = None
    if not OAUTH_SERVER_CLI.exists():
        missing = f"{OAUTH_SERVER_CLI} not installed yet"
    elif database.backend == "postgresql" and run.postgres is None:
        missing = f"no PostgreSQL server answers at {POSTGRES_SERVER}"
    size = DatasetSize()
    return Target(
        key=f"python-w{workers}-{database.backend}{'-loaded' if loaded else ''}",
        server="PythonOauthServer",
        config=f"{workers} worker{'s' if workers > 1 else ''}, {database.backend}"
        + (f", {size.clients:,} clients + {size.tokens:,} tokens" if loaded else ""),
        role=Role.CANDIDATE,
        argv=(str(OAUTH_SERVER_CLI), "serve", "--port", str(port), "--workers", str(workers)),
        env=env,
        cwd=REPO_DIR,
        port=port,
        ready_path="/readyz",
        loads=loads,
        missing=missing,
        workers=workers,
        database=database,
        loaded=loaded,
    )


def default_targets(workdir: Path, seconds: int = 8, connections: int = 32) -> list[Target]:
    """Every target a run may choose from; workdir holds per-run state such as SQLite files.
    seconds and connections size what the sign-in scenarios issue ahead of a measurement."""
    signin = SignInRun(workdir, seconds, connections)
    run = python_run(workdir, signin)
    python = []
    for backend in ("sqlite", "postgresql"):
        for workers, loaded in ((1, False), (2, False), (1, True)):
            label = f"w{workers}{'_loaded' if loaded else ''}"
            database = (
                sqlite_database(workdir / f"{label}.db")
                if backend == "sqlite"
                else postgres_database(label)
            )
            python.append(python_server_target(workers, database, free_port(), run, loaded=loaded))
    return [
        node_target("jwt", free_port(), signin),
        node_target("opaque", free_port(), signin),
        *python,
        ceiling_target(1, free_port()),
        ceiling_target(2, free_port()),
    ]
