"""Durable state of the watcher: runs seen and posted, scan cursors, last reports, watches, leases.

`await open_store(settings.database_url)` connects (SQLite file or PostgreSQL), applies the versioned
migrations (safe when several processes start at once) and returns the `Store`; `await store.close()`
disposes of its connections.
"""

from __future__ import annotations

from bot.store.sql import SqlStore
from handlers.ports import RunRecord, RunRef, ScanCursor, Store, Watch


async def open_store(url: str) -> Store:
    """The store on `url` (`sqlite+aiosqlite:///FILE` or `postgresql+asyncpg://…`), schema up to date."""
    return await SqlStore.open(url)


__all__ = ["RunRecord", "RunRef", "ScanCursor", "SqlStore", "Store", "Watch", "open_store"]
