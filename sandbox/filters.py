"""The small OData `$filter` subset Azure's list APIs accept here: clauses joined by ` and `."""

from __future__ import annotations

import re
from collections.abc import Mapping

_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_EQ = re.compile(r"^\s*([A-Za-z][\w.]*)\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)


def split_and(text: str) -> list[str]:
    """`a and b and c` → [a, b, c]; an empty filter has no clauses."""
    stripped = text.strip()
    return [c.strip() for c in _AND.split(stripped)] if stripped else []


def eq_clause(clause: str) -> tuple[str, str] | None:
    """`field eq 'value'` → (field, value) with OData's doubled quotes undone; None for anything else."""
    match = _EQ.match(clause)
    return (match.group(1), match.group(2).replace("''", "'")) if match else None


def eq_clauses(text: str) -> list[tuple[str, str]] | None:
    """Every clause as (field, value), or None when any clause is not a plain `eq`."""
    parsed = [eq_clause(c) for c in split_and(text)]
    return None if any(p is None for p in parsed) else [p for p in parsed if p is not None]


def query_param(query: Mapping[str, str], name: str) -> str | None:
    """A query parameter whatever its case (`$filter`, `$Filter`), or None when absent."""
    return next((v for k, v in query.items() if k.lower() == name.lower()), None)
