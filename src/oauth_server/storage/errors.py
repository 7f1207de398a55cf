"""Telling "the database is unreachable or overloaded" apart from a bug.

Such failures become ``503 temporarily_unavailable`` with ``Retry-After`` — never a 500, and
never a false success.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import exc as sa_exc

__all__ = ["is_unavailable"]


def is_unavailable(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DBAPIError):
        # OperationalError: connection refused or lost, "database is locked", server shutting
        # down; InterfaceError: the connection is closed. connection_invalidated: a disconnect.
        return error.connection_invalidated or isinstance(
            error, (sa_exc.OperationalError, sa_exc.InterfaceError)
        )
    # Pool exhausted (sqlalchemy.exc.TimeoutError), connect timeouts, refused sockets.
    return isinstance(error, (sa_exc.TimeoutError, asyncio.TimeoutError, ConnectionError, OSError))
