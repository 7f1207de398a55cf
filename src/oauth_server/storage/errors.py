"""Telling "the database is unreachable or overloaded" apart from a bug.

Such failures become ``503 temporarily_unavailable`` with ``Retry-After`` — never a 500, and
never a false success.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import exc as sa_exc

__all__ = ["is_unavailable", "log_background_failure"]


def is_unavailable(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DBAPIError):
        # OperationalError: connection refused or lost, "database is locked", server shutting
        # down; InterfaceError: the connection is closed. connection_invalidated: a disconnect.
        return error.connection_invalidated or isinstance(
            error, (sa_exc.OperationalError, sa_exc.InterfaceError)
        )
    # Pool exhausted (sqlalchemy.exc.TimeoutError), connect timeouts, refused sockets.
    return isinstance(error, (sa_exc.TimeoutError, asyncio.TimeoutError, ConnectionError, OSError))


def log_background_failure(log: logging.Logger, what: str, error: Exception) -> None:
    """Log a failed background task (a cache poll, a key check): while the database is down
    that is expected and repeats every interval, so one line; anything else with its traceback."""
    if is_unavailable(error):
        log.warning("%s failed: database unavailable: %s", what, error)
    else:
        log.warning("%s failed", what, exc_info=error)
