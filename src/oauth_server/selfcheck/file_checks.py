"""Checks of the files the server keeps its secrets in: the secret key file, the SQLite
database and its ``-wal``/``-shm`` companions (they hold the same rows)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from oauth_server.selfcheck.registry import Deployment, Finding, check, rule
from oauth_server.services import secret_key_source
from oauth_server.storage.sql.engine import sqlite_file

__all__: list[str] = []

SECRET_FILE_MODE = rule(
    "file.secret-key",
    "critical",
    reference="project rule (secrets never readable by others)",
    setting="OAUTH_SERVER_SECRET_KEY_FILE",
    fix="chmod 600 the file (and 700 its folder), owned by the server's user",
    summary="The secret key file is readable or writable by its group or others.",
)
DATABASE_WRITABLE = rule(
    "file.database-writable",
    "critical",
    reference="project rule",
    setting="OAUTH_SERVER_DATABASE_URL",
    fix="chmod 600 the SQLite files and 700 their folder",
    summary="The SQLite database, its -wal/-shm file or its folder is writable by its group "
    "or others (they could register clients).",
)
DATABASE_READABLE = rule(
    "file.database-readable",
    "warning",
    reference="project rule",
    setting="OAUTH_SERVER_DATABASE_URL",
    fix="chmod 600 the SQLite files (new ones are created so)",
    summary="The SQLite database or its -wal/-shm file is readable by its group or others "
    "(password hashes, encrypted signing keys, audit trail).",
)


def _mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


@check("file permissions", rules=[SECRET_FILE_MODE, DATABASE_WRITABLE, DATABASE_READABLE])
async def file_permissions(deployment: Deployment) -> list[Finding]:
    settings = deployment.settings
    findings = []
    source = secret_key_source(settings)
    if source.path is not None and (mode := _mode(source.path)) is not None and mode & 0o077:
        findings.append(
            SECRET_FILE_MODE.finding(
                f"the secret key file {source.path} has mode {mode:03o}",
                fix=f"chmod 600 {source.path}",
            )
        )
    database = sqlite_file(settings.database_url)
    if database is None:
        return findings
    file = Path(database)
    folder = file.parent
    if (mode := _mode(folder)) is not None and mode & 0o022 and not mode & stat.S_ISVTX:
        findings.append(
            DATABASE_WRITABLE.finding(
                f"the database folder {folder} has mode {mode:03o}", fix=f"chmod 700 {folder}"
            )
        )
    for path in (file, Path(f"{database}-wal"), Path(f"{database}-shm")):
        mode = _mode(path)
        if mode is None:
            continue
        if mode & 0o022:
            findings.append(
                DATABASE_WRITABLE.finding(
                    f"the database file {path} has mode {mode:03o}", fix=f"chmod 600 {path}"
                )
            )
        elif mode & 0o044:
            findings.append(
                DATABASE_READABLE.finding(
                    f"the database file {path} has mode {mode:03o}", fix=f"chmod 600 {path}"
                )
            )
    return findings
