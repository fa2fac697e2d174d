"""Counting words in report texts: "1 SQL server", "2 SQL servers", never "server(s)"."""

from __future__ import annotations


def plural(count: int, word: str, many: str | None = None) -> str:
    """`word` for one, else `many` (default: `word` + "s")."""
    return word if count == 1 else (many or f"{word}s")


def counted(count: int, word: str, many: str | None = None) -> str:
    """ "1 SQL server", "2 SQL servers"."""
    return f"{count} {plural(count, word, many)}"
