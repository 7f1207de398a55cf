"""The servers under test. A Target says how to start a server and which loads it serves.

To add a server: write a factory returning a Target (see python_server_target) and list it in
default_targets(). Each scenario maps to a function building its Load; it runs once the server
is ready, just before each measurement, so it may fetch a fresh token or create a client.
"""

import functools
import json
import os
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

from . import BENCH_DIR, REPO_DIR
from .loads import (
    SCOPE,
    Load,
    LoadError,
    Scenario,
    bearer_get,
    fetch_token,
    introspect,
    plain_get,
    token_basic,
    token_post,
)

NODE_DIR = BENCH_DIR / "node"
OAUTH_SERVER_CLI = REPO_DIR / ".venv" / "bin" / "oauth-server"


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


def node_target(tokens: Literal["jwt", "opaque"], port: int) -> Target:
    """node-oidc-provider, one process, in-memory adapter, issuing access tokens of one format."""
    loads: dict[Scenario, Callable[[], Load]]
    if tokens == "jwt":
        loads = {
            Scenario.CC_JWT_POST: lambda: token_post("/token", "admin", "getroot"),
            Scenario.CC_JWT_BASIC: lambda: token_basic("/token", "admin-basic", "getroot"),
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
        env={"PORT": str(port), "FORMAT": tokens, "NODE_ENV": "production"},
        cwd=NODE_DIR,
        port=port,
        ready_path="/.well-known/openid-configuration",
        loads=loads,
        missing=None if version else "bench/node/node_modules missing: run bench/setup.sh",
    )


def ceiling_target(port: int) -> Target:
    """The bare ASGI hello-world under uvicorn + uvloop + httptools."""
    absent = [name for name in ("uvicorn", "uvloop", "httptools") if find_spec(name) is None]
    return Target(
        key="ceiling",
        server="bare ASGI (ceiling)",
        config="uvicorn, 1 process, uvloop + httptools",
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
        ),
        env={},
        cwd=BENCH_DIR,
        port=port,
        ready_path="/",
        loads={Scenario.CEILING: lambda: plain_get("/")},
        missing=f"not importable here: {', '.join(absent)}" if absent else None,
    )


def python_server_target(workers: int, database_url: str, port: int) -> Target:
    """PythonOauthServer: `oauth-server serve` in development mode (demo client admin/getroot)."""
    env = {"OAUTH_SERVER_DATABASE_URL": database_url, "OAUTH_SERVER_ENV": "development"}

    @functools.cache
    def opaque_client() -> tuple[str, str]:
        # A fresh id each run, so a database that outlives the run never holds it already.
        argv = [
            str(OAUTH_SERVER_CLI),
            "clients",
            "create",
            "--client-id",
            f"bench-opaque-{os.urandom(4).hex()}",
            "--grant-type",
            "client_credentials",
            "--scope",
            SCOPE,
            "--token-format",
            "opaque",
            "--json",
        ]
        done = subprocess.run(
            argv, env=os.environ | env, cwd=REPO_DIR, capture_output=True, text=True, check=False
        )
        try:
            created = json.loads(done.stdout) if done.returncode == 0 else {}
            return created["client_id"], created["client_secret"]
        except (ValueError, KeyError) as error:
            raise LoadError(f"oauth-server clients create failed: {done.stderr.strip()}") from error

    def introspect_opaque() -> Load:
        client_id, secret = opaque_client()
        token = fetch_token(port, "/oauth/token", client_id, secret)
        return introspect("/oauth/introspect", token, client_id, secret)

    loads: dict[Scenario, Callable[[], Load]] = {
        Scenario.CC_JWT_POST: lambda: token_post("/oauth/token", "admin", "getroot"),
        Scenario.CC_JWT_BASIC: lambda: token_basic("/oauth/token", "admin", "getroot"),
        Scenario.CC_OPAQUE_POST: lambda: token_post("/oauth/token", *opaque_client()),
        Scenario.CC_OPAQUE_BASIC: lambda: token_basic("/oauth/token", *opaque_client()),
        Scenario.INTROSPECT: introspect_opaque,
        Scenario.RESOURCE_GET: lambda: bearer_get(
            "/api/restaurants", fetch_token(port, "/oauth/token", "admin", "getroot")
        ),
    }
    database = database_url.split(":", 1)[0].split("+", 1)[0]
    return Target(
        key=f"python-w{workers}-{database}",
        server="PythonOauthServer",
        config=f"{workers} worker{'s' if workers > 1 else ''}, {database}",
        role=Role.CANDIDATE,
        argv=(str(OAUTH_SERVER_CLI), "serve", "--port", str(port), "--workers", str(workers)),
        env=env,
        cwd=REPO_DIR,
        port=port,
        ready_path="/readyz",
        loads=loads,
        missing=None if OAUTH_SERVER_CLI.exists() else f"{OAUTH_SERVER_CLI} not installed yet",
    )


def default_targets(workdir: Path) -> list[Target]:
    """Every target a run may choose from; workdir holds per-run state such as SQLite files."""
    return [
        node_target("jwt", free_port()),
        node_target("opaque", free_port()),
        python_server_target(1, f"sqlite+aiosqlite:///{workdir / 'w1.db'}", free_port()),
        python_server_target(2, f"sqlite+aiosqlite:///{workdir / 'w2.db'}", free_port()),
        ceiling_target(free_port()),
    ]
