"""Durable state of the watcher: runs seen and posted, scan cursors, last reports, watches, leases.

`await open_store(settings.database_url)` connects (SQLite file or PostgreSQL), applies the versioned
migrations (safe when several processes start at once) and returns the `Store`; `await store.close()`
disposes of its connections.

`ResilientStore` is the store of the long-running processes (`serve`, `watch`): it opens the database in
the background and keeps trying with backoff, so the bot starts, and answers slash commands, while the
database is down; every call made while it is unavailable raises `StoreUnavailable` at once (no call
waits on a dead database), and a probe with backoff notices when it is back.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import exc as sa_exc

from bot.store.sql import SqlStore, normalize_url
from handlers.ports import (
    Mute,
    RunPost,
    RunRecord,
    RunRef,
    ScanCursor,
    Store,
    StoredReport,
    StoreUnavailable,
    Watch,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0  # seconds per connect and statement (PURVIEW_BOT_DATABASE_TIMEOUT)
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 30.0
START_WAIT_SECONDS = 2.0  # how long `start()` lets the first open run before the caller goes on
NOT_OPEN = "not connected yet"


async def open_store(url: str, *, connect_timeout: float | None = None) -> Store:
    """The store on `url` (`sqlite+aiosqlite:///FILE` or `postgresql+asyncpg://…`), schema up to date;
    with `connect_timeout`, a database that does not answer fails within it (the migration within 6 ×)."""
    return await SqlStore.open(url, connect_timeout=connect_timeout)


_OUTAGES: tuple[type[BaseException], ...] = (
    OSError,  # ConnectionRefusedError, ConnectionResetError, …; TimeoutError too
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # no pooled connection came back in time
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,  # "the database system is starting up"
    asyncpg.exceptions.InterfaceError,
)


def is_outage(error: BaseException) -> bool:
    """The database is unreachable or stopped answering (as opposed to a bug or a constraint)."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, _OUTAGES)


def outage_text(error: BaseException) -> str:
    """What the log and `/healthz` say about a failure: its kind, never the URL, host or port."""
    if isinstance(error, sa_exc.DBAPIError) and error.orig is not None:
        error = error.orig
    if isinstance(error, TimeoutError):
        return "no answer in time"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return type(error).__name__


class ResilientStore:
    """A `Store` whose database may come and go (see the module's text). `start()` opens it in the
    background (each connect and statement bounded by `timeout`), trying again with backoff; `problem` is
    None when the database answers, else why not (for `/healthz`, the webhook and the watcher);
    `close()` stops trying and closes."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        first_retry: float = FIRST_RETRY_SECONDS,
        max_retry: float = MAX_RETRY_SECONDS,
    ) -> None:
        normalize_url(url)  # a URL of the wrong kind is a configuration error: ValueError now, not retries
        self._url = url
        self._timeout = timeout
        self._first_retry = first_retry
        self._max_retry = max_retry
        self._store: SqlStore | None = None
        self._problem: str | None = NOT_OPEN
        self._opened = asyncio.Event()
        self._tried = asyncio.Event()  # the first attempt is over (opened or failed)
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # state ----------------------------------------------------------------------------------------

    @property
    def problem(self) -> str | None:
        """None when the database answers; else why not ("not connected yet", "unavailable: …")."""
        return self._problem

    @property
    def is_open(self) -> bool:
        return self._opened.is_set()

    async def start(self, wait: float = START_WAIT_SECONDS) -> None:
        """Open the database in the background, trying again with backoff until it opens; return once the
        first attempt is over or after `wait` seconds, whichever comes first (a healthy database is open
        before the process serves; a silent one delays the start by `wait` at most)."""
        if self._task is not None:
            return
        self._task = asyncio.create_task(self._keep_opening(), name="store-open")
        tried = asyncio.ensure_future(self._tried.wait())
        try:
            await asyncio.wait({tried, self._task}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            tried.cancel()

    async def wait_open(self, stop: asyncio.Event) -> bool:
        """Wait until the database has been opened (True) or `stop` is set first (False)."""
        if self._opened.is_set():
            return True
        opened = asyncio.ensure_future(self._opened.wait())
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({opened, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            opened.cancel()
            stopped.cancel()
        return self._opened.is_set()

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._store is not None:
            await self._store.close()

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with jitter: first_retry, ×2 each attempt, at most max_retry."""
        base = min(self._max_retry, self._first_retry * 2.0 ** max(0, attempt - 1))
        return float(base * random.uniform(0.8, 1.0))

    async def _open_once(self, attempt: int, retry: float) -> bool:
        try:
            store = await SqlStore.open(self._url, connect_timeout=self._timeout)
        except Exception as error:  # whatever it is, the bot goes on without its database and retries
            self._problem = f"unavailable: {outage_text(error)}"
            if is_outage(error):
                log.warning(
                    "the database (PURVIEW_BOT_DATABASE_URL) is unavailable: %s; attempt %d, retry in %.0f s",
                    outage_text(error),
                    attempt,
                    retry,
                )
            else:
                log.error(
                    "the database (PURVIEW_BOT_DATABASE_URL) failed to open; attempt %d, retry in %.0f s",
                    attempt,
                    retry,
                    exc_info=error,
                )
            return False
        self._store = store
        self._problem = None
        self._opened.set()
        if attempt > 1:
            log.warning("the database is open (attempt %d)", attempt)
        return True

    async def _keep_opening(self) -> None:
        attempt = 1
        while not self._closed:
            retry = self._delay(attempt)
            opened = await self._open_once(attempt, retry)
            self._tried.set()
            if opened:
                return
            await asyncio.sleep(retry)
            attempt += 1

    def _lost(self, error: BaseException) -> None:
        """A call found the database gone: fail the next calls fast and probe until it answers again."""
        if self._problem is None:
            self._problem = f"unavailable: {outage_text(error)}"
            log.warning(
                "the database stopped answering (%s): probing it until it is back", outage_text(error)
            )
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._probe(), name="store-probe")

    async def _probe(self) -> None:
        attempt = 0
        while not self._closed and self._problem is not None and self._store is not None:
            attempt += 1
            await asyncio.sleep(self._delay(attempt))
            try:
                await self._store.ping()
            except Exception as error:
                self._problem = f"unavailable: {outage_text(error)}"
                log.info("the database still does not answer (%s)", outage_text(error))
                continue
            self._problem = None
            log.warning("the database answers again")

    async def _call(self, op: Callable[[SqlStore], Awaitable[T]]) -> T:
        store = self._store
        if store is None or self._problem is not None:
            raise StoreUnavailable(f"the database is {self._problem or NOT_OPEN}")
        try:
            return await op(store)
        except Exception as error:
            if not is_outage(error):
                raise
            self._lost(error)
            raise StoreUnavailable(f"the database is {self._problem}") from error

    # the Store protocol, delegated ------------------------------------------------------------------

    async def claim_run(self, ref: RunRef, *, status: str, end_time: datetime | None, holder: str) -> bool:
        return await self._call(lambda s: s.claim_run(ref, status=status, end_time=end_time, holder=holder))

    async def reclaim(self, ref: RunRef, *, holder: str, stale_before: datetime) -> bool:
        return await self._call(lambda s: s.reclaim(ref, holder=holder, stale_before=stale_before))

    async def mark_posted(
        self, refs: Sequence[RunRef], *, channel: str, message_ts: str, fingerprint: str | None
    ) -> None:
        await self._call(
            lambda s: s.mark_posted(refs, channel=channel, message_ts=message_ts, fingerprint=fingerprint)
        )

    async def run_record(self, ref: RunRef) -> RunRecord | None:
        return await self._call(lambda s: s.run_record(ref))

    async def unposted(self, account: str) -> list[RunRecord]:
        return await self._call(lambda s: s.unposted(account))

    async def record_posts(
        self,
        refs: Sequence[RunRef],
        *,
        channel: str,
        posted_in: str | None,
        message_ts: str | None,
        note: str | None = None,
    ) -> None:
        await self._call(
            lambda s: s.record_posts(
                refs, channel=channel, posted_in=posted_in, message_ts=message_ts, note=note
            )
        )

    async def run_posts(self, refs: Sequence[RunRef]) -> list[RunPost]:
        return await self._call(lambda s: s.run_posts(refs))

    async def thread_posts(self, account: str, posted_in: str, message_ts: str) -> list[RunPost]:
        return await self._call(lambda s: s.thread_posts(account, posted_in, message_ts))

    async def cursors(self, account: str) -> dict[tuple[str, str], ScanCursor]:
        return await self._call(lambda s: s.cursors(account))

    async def save_cursor(self, cursor: ScanCursor) -> None:
        await self._call(lambda s: s.save_cursor(cursor))

    async def save_report(self, account: str, source: str, report: dict[str, Any]) -> None:
        await self._call(lambda s: s.save_report(account, source, report))

    async def last_report(self, account: str, source: str) -> dict[str, Any] | None:
        return await self._call(lambda s: s.last_report(account, source))

    async def last_reports(self, account: str) -> list[StoredReport]:
        return await self._call(lambda s: s.last_reports(account))

    async def mute(self, mute: Mute) -> None:
        await self._call(lambda s: s.mute(mute))

    async def unmute(self, account: str, source: str) -> bool:
        return await self._call(lambda s: s.unmute(account, source))

    async def mutes(self, account: str) -> list[Mute]:
        return await self._call(lambda s: s.mutes(account))

    async def watches(self) -> list[Watch]:
        return await self._call(lambda s: s.watches())

    async def add_watch(self, watch: Watch) -> None:
        await self._call(lambda s: s.add_watch(watch))

    async def remove_watch(self, watch: Watch) -> None:
        await self._call(lambda s: s.remove_watch(watch))

    async def acquire_lease(self, name: str, *, holder: str, ttl_seconds: float) -> bool:
        return await self._call(lambda s: s.acquire_lease(name, holder=holder, ttl_seconds=ttl_seconds))

    async def release_lease(self, name: str, *, holder: str) -> None:
        await self._call(lambda s: s.release_lease(name, holder=holder))

    async def claim_delivery(self, key: str) -> bool:
        return await self._call(lambda s: s.claim_delivery(key))

    async def prune_deliveries(self, before: datetime) -> int:
        return await self._call(lambda s: s.prune_deliveries(before))


__all__ = [
    "Mute",
    "ResilientStore",
    "RunPost",
    "RunRecord",
    "RunRef",
    "ScanCursor",
    "SqlStore",
    "Store",
    "StoreUnavailable",
    "StoredReport",
    "Watch",
    "is_outage",
    "open_store",
]
