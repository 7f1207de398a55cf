"""Substring search in SQL, the same on every backend."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, or_
from sqlalchemy.sql.elements import ColumnClause

__all__ = ["contains_any"]


def contains_any(text: str, *columns: ColumnClause[str]) -> ColumnElement[bool]:
    """Rows where any of ``columns`` contains ``text``, case-insensitively. ``%``, ``_`` and
    the escape character are escaped, so every character of ``text`` matches only itself."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return or_(*(func.lower(column).like(pattern, escape="\\") for column in columns))
