"""Log lines: JSON for a log pipeline, or text for a person (``OAUTH_SERVER_LOG_FORMAT``).

Every record becomes one line. Structured fields travel in the record's ``fields`` attribute
(``log.info("…", extra={"fields": {...}})``, or :func:`event`): JSON puts them beside
``ts``, ``level``, ``logger`` and ``message``; text appends them as ``key=value``.

What goes into a field is chosen by the server: identifiers (request id, client id, user id,
key id), route templates, counts, RFC error codes — never a token, code, secret, password,
cookie or ``Authorization`` value (tests/e2e/test_no_secrets.py searches every line).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

__all__ = [
    "JsonFormatter",
    "LogFormat",
    "TextFormatter",
    "event",
    "logging_config",
]

LogFormat = Literal["json", "text"]

_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def _fields(record: logging.LogRecord) -> Mapping[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, Mapping) else {}


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in _fields(record).items():
            line.setdefault(name, value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        return orjson.dumps(line, default=str).decode("utf-8")


class TextFormatter(logging.Formatter):
    """``2026-12-01 21:58:13 INFO oauth_server.request: POST /oauth/token 200 key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def converter(self, timestamp: float | None) -> time.struct_time:
        return time.gmtime(timestamp)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _fields(record)
        if not fields:
            return text
        pairs = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None and v != "")
        head, sep, rest = text.partition("\n")  # a traceback stays below the line
        return f"{head} {pairs}{sep}{rest}"


def event(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    """Log ``message`` with structured ``fields`` (background work: rotation, purge, sync)."""
    if logger.isEnabledFor(level):
        logger.log(level, message, extra={"fields": fields})


def logging_config(log_format: LogFormat, level: str) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` for the server and uvicorn (uvicorn applies it in
    every worker): one handler on stderr, the chosen format, the server's level."""
    formatter = (
        "oauth_server.logs.JsonFormatter"
        if log_format == "json"
        else ("oauth_server.logs.TextFormatter")
    )
    upper = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": formatter}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "oauth_server": {"level": upper},
            "uvicorn": {"level": upper},
            # The server writes its own request lines (oauth_server.request).
            "uvicorn.access": {"level": "WARNING", "propagate": False},
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
    }
