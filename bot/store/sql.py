"""`SqlStore`: the `Store` protocol on SQLAlchemy 2 async, for SQLite (aiosqlite) and PostgreSQL (asyncpg).

Concurrency rests on single atomic statements, never on check-then-act:
- `claim_run` is a plain INSERT; the unique key (account, source, scan, run_id) makes exactly one
  inserter win, whichever replica, watcher or webhook it is. IntegrityError → False.
- `reclaim` is one conditional UPDATE (`state = 'claimed' AND claimed_at < :stale_before`); its
  rowcount says who won.
- `acquire_lease` is one `INSERT … ON CONFLICT (name) DO UPDATE … WHERE expired OR same holder
  RETURNING holder`: a row comes back iff this holder now has the lease.
- `claim_delivery` is one `INSERT … ON CONFLICT (key) DO NOTHING RETURNING key`: a row comes back iff
  this call took the Slack delivery (a retry or a replay finds the key taken).

Clocks: the lease statement compares and stamps times with the *database's* clock (PostgreSQL `now()`,
evaluated by the server; SQLite lives on this host, so its clock is this host's, passed as a parameter),
so replicas on hosts with skewed clocks agree on who holds a lease. `claimed_at` is stamped with this
process's UTC clock, because `reclaim` compares it with the caller's `stale_before`, itself from the
caller's clock; staleness is minutes (2 × the diagnosis deadline), so host skew of seconds is harmless.

SQLite: each connection sets `busy_timeout` and WAL (readers never block the writer, several processes
share the file) and emits its own BEGIN (the `sqlite3` module's implicit transactions are switched off),
`BEGIN IMMEDIATE` for writes, so that writers queue on the busy timeout rather than failing with
"database is locked" when upgrading a read lock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    CursorResult,
    Interval,
    Row,
    Table,
    and_,
    bindparam,
    delete,
    event,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.sql.elements import ColumnElement

from bot.store.migrations import SQLITE_IMMEDIATE, migrate
from bot.store.schema import (
    UtcDateTime,
    deliveries,
    leases,
    mutes,
    reports,
    run_posts,
    runs,
    scan_cursors,
    watches,
)
from handlers.ports import Mute, RunPost, RunRecord, RunRef, ScanCursor, StoredReport, Watch

log = logging.getLogger(__name__)

CLAIMED = "claimed"
POSTED = "posted"

SQLITE_BUSY_TIMEOUT_MS = 30_000
# INSERT … ON CONFLICT DO UPDATE … RETURNING needs SQLite 3.35 (RETURNING; upsert itself is 3.24)
SQLITE_MIN_VERSION = (3, 35, 0)
# refs per UPDATE in mark_posted (4 bound values each, well under SQLite's variable limit)
_CHUNK = 500


def normalize_url(url: str) -> URL:
    """The URL with the async driver this store uses: `postgres://`, `postgresql://` and
    `postgresql+psycopg://` become `postgresql+asyncpg://`; `sqlite://` becomes `sqlite+aiosqlite://`."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        return parsed.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    raise ValueError(
        f"unsupported PURVIEW_BOT_DATABASE_URL backend {backend!r}: "
        "use sqlite+aiosqlite:///FILE or postgresql+asyncpg://USER@HOST/DB"
    )


def _is_memory(url: URL) -> bool:
    database = url.database or ""
    return (
        database == ""
        or ":memory:" in database
        or "mode=memory" in database
        or url.query.get("mode") == "memory"
    )


def _check_sqlite_version() -> None:
    if sqlite3.sqlite_version_info < SQLITE_MIN_VERSION:
        need = ".".join(map(str, SQLITE_MIN_VERSION))
        raise RuntimeError(
            f"SQLite {sqlite3.sqlite_version} is too old for purview-bot's store (needs {need} for "
            "INSERT … ON CONFLICT … RETURNING): use a newer Python build or PostgreSQL"
        )


def _sqlite_events(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # no implicit transactions from the sqlite3 module: SQLAlchemy's BEGIN below is the only one,
        # which makes DDL transactional and lets writes take the write lock up front
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")  # persistent in the file; "memory" for :memory:
            cursor.execute("PRAGMA synchronous = NORMAL")  # durable across crashes of the process in WAL
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(SQLITE_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# the schema migration on start may take this many connect timeouts (it may wait for another replica's)
MIGRATION_TIMEOUTS = 6


def create_engine_for(url: str | URL, *, connect_timeout: float | None = None) -> AsyncEngine:
    """The store's engine for `url`, configured for its database (not yet connected, not migrated).

    `connect_timeout` (PostgreSQL): seconds a connect may take (asyncpg's `timeout`: a server that accepts and
    never answers fails then, not after minutes) and each statement (`command_timeout`). SQLite is a
    local file: its waits are the busy timeout's."""
    parsed = normalize_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_version()
        if _is_memory(parsed):
            # one connection, held for the engine's life (the database lives in it); coroutines queue
            # for it instead of sharing it mid-transaction as the dialect's default StaticPool would
            engine = create_async_engine(
                parsed, poolclass=AsyncAdaptedQueuePool, pool_size=1, max_overflow=0, pool_recycle=-1
            )
        else:
            engine = create_async_engine(parsed)
        _sqlite_events(engine)
        return engine
    if connect_timeout is not None:
        connect_args = {"timeout": connect_timeout, "command_timeout": connect_timeout}
        return create_async_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    return create_async_engine(parsed, pool_pre_ping=True)


def _now() -> datetime:
    return datetime.now(UTC)


def _ref_is(ref: RunRef) -> ColumnElement[bool]:
    return and_(
        runs.c.account == ref.account,
        runs.c.source == ref.source,
        runs.c.scan == ref.scan,
        runs.c.run_id == ref.run_id,
    )


def _run_record(row: Row[Any]) -> RunRecord:
    return RunRecord(
        ref=RunRef(account=row.account, source=row.source, scan=row.scan, run_id=row.run_id),
        status=row.status,
        end_time=row.end_time,
        state=row.state,
        holder=row.holder,
        claimed_at=row.claimed_at,
        fingerprint=row.fingerprint,
        channel=row.channel,
        message_ts=row.message_ts,
    )


def _run_post(row: Row[Any]) -> RunPost:
    return RunPost(
        ref=RunRef(account=row.account, source=row.source, scan=row.scan, run_id=row.run_id),
        channel=row.channel,
        posted_in=row.posted_in,
        message_ts=row.message_ts,
        note=row.note,
    )


def _cursor(row: Row[Any]) -> ScanCursor:
    return ScanCursor(
        account=row.account,
        source=row.source,
        scan=row.scan,
        last_run_id=row.last_run_id,
        last_status=row.last_status,
        last_end_time=row.last_end_time,
        failing_since=row.failing_since,
        thread_channel=row.thread_channel,
        thread_ts=row.thread_ts,
    )


class SqlStore:
    """The durable state on one SQLAlchemy async engine, which the store owns and `close()` disposes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name

    @classmethod
    async def open(cls, url: str, *, connect_timeout: float | None = None) -> SqlStore:
        """Connect to `url`, bring its schema to the latest version, and return the store. With
        `connect_timeout`, connects and statements are bounded by it and the migration by
        MIGRATION_TIMEOUTS × it (TimeoutError)."""
        engine = create_engine_for(url, connect_timeout=connect_timeout)
        try:
            if connect_timeout is None:
                await migrate(engine)
            else:
                async with asyncio.timeout(MIGRATION_TIMEOUTS * connect_timeout):
                    await migrate(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def close(self) -> None:
        await self._engine.dispose()

    # transactions ---------------------------------------------------------------------------------

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction (SQLite: BEGIN IMMEDIATE, waiting on the busy timeout for the write lock)."""
        async with self._engine.connect() as conn:
            conn = await conn.execution_options(**{SQLITE_IMMEDIATE: True})
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self._engine.connect() as conn, conn.begin():
            yield conn

    def _insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    # runs -----------------------------------------------------------------------------------------

    async def claim_run(self, ref: RunRef, *, status: str, end_time: datetime | None, holder: str) -> bool:
        statement = runs.insert().values(
            account=ref.account,
            source=ref.source,
            scan=ref.scan,
            run_id=ref.run_id,
            status=status,
            end_time=end_time,
            state=CLAIMED,
            holder=holder,
            claimed_at=_now(),
        )
        try:
            async with self._write() as conn:
                await conn.execute(statement)
        except IntegrityError:
            return False  # the unique key: someone else claimed it first
        return True

    async def reclaim(self, ref: RunRef, *, holder: str, stale_before: datetime) -> bool:
        statement = (
            update(runs)
            .where(_ref_is(ref), runs.c.state == CLAIMED, runs.c.claimed_at < stale_before)
            .values(holder=holder, claimed_at=_now())
        )
        async with self._write() as conn:
            result: CursorResult[Any] = await conn.execute(statement)
        return result.rowcount == 1

    async def mark_posted(
        self, refs: Sequence[RunRef], *, channel: str, message_ts: str, fingerprint: str | None
    ) -> None:
        unique = list(dict.fromkeys(refs))
        if not unique:
            return
        key = tuple_(runs.c.account, runs.c.source, runs.c.scan, runs.c.run_id)
        changed = 0
        async with self._write() as conn:
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                result: CursorResult[Any] = await conn.execute(
                    update(runs)
                    .where(key.in_([(r.account, r.source, r.scan, r.run_id) for r in chunk]))
                    .values(state=POSTED, channel=channel, message_ts=message_ts, fingerprint=fingerprint)
                )
                changed += result.rowcount
        if changed != len(unique):
            log.warning(
                "mark_posted: %d of %d runs were never claimed and stay unrecorded (message %s in %s)",
                len(unique) - changed,
                len(unique),
                message_ts,
                channel,
            )

    async def run_record(self, ref: RunRef) -> RunRecord | None:
        async with self._read() as conn:
            row = (await conn.execute(select(runs).where(_ref_is(ref)))).first()
        return _run_record(row) if row is not None else None

    async def unposted(self, account: str) -> list[RunRecord]:
        statement = (
            select(runs)
            .where(runs.c.account == account, runs.c.state == CLAIMED)
            .order_by(runs.c.claimed_at, runs.c.id)
        )
        async with self._read() as conn:
            rows = (await conn.execute(statement)).all()
        return [_run_record(r) for r in rows]

    # cursors --------------------------------------------------------------------------------------

    async def cursors(self, account: str) -> dict[tuple[str, str], ScanCursor]:
        async with self._read() as conn:
            rows = (await conn.execute(select(scan_cursors).where(scan_cursors.c.account == account))).all()
        return {(r.source, r.scan): _cursor(r) for r in rows}

    async def save_cursor(self, cursor: ScanCursor) -> None:
        values = {
            "last_run_id": cursor.last_run_id,
            "last_status": cursor.last_status,
            "last_end_time": cursor.last_end_time,
            "failing_since": cursor.failing_since,
            "thread_channel": cursor.thread_channel,
            "thread_ts": cursor.thread_ts,
        }
        insert = self._insert(scan_cursors).values(
            account=cursor.account, source=cursor.source, scan=cursor.scan, **values
        )
        statement = insert.on_conflict_do_update(
            index_elements=[scan_cursors.c.account, scan_cursors.c.source, scan_cursors.c.scan],
            set_={name: insert.excluded[name] for name in values},
        )
        async with self._write() as conn:
            await conn.execute(statement)

    # reports --------------------------------------------------------------------------------------

    async def save_report(self, account: str, source: str, report: dict[str, Any]) -> None:
        insert = self._insert(reports).values(
            account=account, source=source, report=json.dumps(report), updated_at=_now()
        )
        statement = insert.on_conflict_do_update(
            index_elements=[reports.c.account, reports.c.source],
            set_={"report": insert.excluded.report, "updated_at": insert.excluded.updated_at},
        )
        async with self._write() as conn:
            await conn.execute(statement)

    async def last_report(self, account: str, source: str) -> dict[str, Any] | None:
        statement = select(reports.c.report).where(reports.c.account == account, reports.c.source == source)
        async with self._read() as conn:
            stored = (await conn.execute(statement)).scalar_one_or_none()
        if stored is None:
            return None
        value = json.loads(stored)
        return value if isinstance(value, dict) else None

    async def last_reports(self, account: str) -> list[StoredReport]:
        statement = select(reports).where(reports.c.account == account).order_by(reports.c.source)
        async with self._read() as conn:
            rows = (await conn.execute(statement)).all()
        found = []
        for row in rows:
            value = json.loads(row.report)
            if isinstance(value, dict):
                found.append(StoredReport(row.account, row.source, value, row.updated_at))
        return found

    # mutes ----------------------------------------------------------------------------------------

    async def mute(self, mute: Mute) -> None:
        insert = self._insert(mutes).values(
            account=mute.account,
            source=mute.source,
            until=mute.until,
            muted_by=mute.muted_by,
            muted_at=_now(),
        )
        statement = insert.on_conflict_do_update(
            index_elements=[mutes.c.account, mutes.c.source],
            set_={name: insert.excluded[name] for name in ("until", "muted_by", "muted_at")},
        )
        async with self._write() as conn:
            await conn.execute(statement)

    async def unmute(self, account: str, source: str) -> bool:
        async with self._write() as conn:
            result: CursorResult[Any] = await conn.execute(
                delete(mutes).where(mutes.c.account == account, mutes.c.source == source)
            )
        return bool(result.rowcount)

    async def mutes(self, account: str) -> list[Mute]:
        statement = select(mutes).where(mutes.c.account == account).order_by(mutes.c.source)
        async with self._read() as conn:
            rows = (await conn.execute(statement)).all()
        return [Mute(r.account, r.source, r.until, r.muted_by) for r in rows]

    # watches --------------------------------------------------------------------------------------

    async def watches(self) -> list[Watch]:
        statement = select(watches).order_by(
            watches.c.channel, watches.c.account, watches.c.collection, watches.c.source
        )
        async with self._read() as conn:
            rows = (await conn.execute(statement)).all()
        return [
            Watch(
                channel=r.channel,
                account=r.account,
                collection=r.collection or None,
                source=r.source or None,
            )
            for r in rows
        ]

    async def add_watch(self, watch: Watch) -> None:
        statement = (
            self._insert(watches)
            .values(
                channel=watch.channel,
                account=watch.account,
                collection=watch.collection or "",
                source=watch.source or "",
            )
            .on_conflict_do_nothing(
                index_elements=[watches.c.channel, watches.c.account, watches.c.collection, watches.c.source]
            )
        )
        async with self._write() as conn:
            await conn.execute(statement)

    async def remove_watch(self, watch: Watch) -> None:
        statement = delete(watches).where(
            watches.c.channel == watch.channel,
            watches.c.account == watch.account,
            watches.c.collection == (watch.collection or ""),
            watches.c.source == (watch.source or ""),
        )
        async with self._write() as conn:
            await conn.execute(statement)

    # Slack deliveries -----------------------------------------------------------------------------

    async def claim_delivery(self, key: str) -> bool:
        statement = (
            self._insert(deliveries)
            .values(key=key, seen_at=_now())
            .on_conflict_do_nothing(index_elements=[deliveries.c.key])
            .returning(deliveries.c.key)
        )
        async with self._write() as conn:
            taken = (await conn.execute(statement)).scalar_one_or_none()
        return taken is not None

    async def prune_deliveries(self, before: datetime) -> int:
        async with self._write() as conn:
            result: CursorResult[Any] = await conn.execute(
                delete(deliveries).where(deliveries.c.seen_at < before)
            )
        return int(result.rowcount)

    # per-channel posts of a run ------------------------------------------------------------------

    async def record_posts(
        self,
        refs: Sequence[RunRef],
        *,
        channel: str,
        posted_in: str | None,
        message_ts: str | None,
        note: str | None = None,
    ) -> None:
        unique = list(dict.fromkeys(refs))
        if not unique:
            return
        at = _now()
        rows = [
            {
                "account": r.account,
                "source": r.source,
                "scan": r.scan,
                "run_id": r.run_id,
                "channel": channel,
                "posted_in": posted_in,
                "message_ts": message_ts,
                "note": note,
                "posted_at": at,
            }
            for r in unique
        ]
        key = [run_posts.c[name] for name in ("account", "source", "scan", "run_id", "channel")]
        async with self._write() as conn:
            for start in range(0, len(rows), _CHUNK // 2):  # 9 values a row
                statement = self._insert(run_posts).on_conflict_do_nothing(index_elements=key)
                await conn.execute(statement, rows[start : start + _CHUNK // 2])

    async def run_posts(self, refs: Sequence[RunRef]) -> list[RunPost]:
        unique = list(dict.fromkeys(refs))
        found: list[RunPost] = []
        key = tuple_(run_posts.c.account, run_posts.c.source, run_posts.c.scan, run_posts.c.run_id)
        async with self._read() as conn:
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                statement = (
                    select(run_posts)
                    .where(key.in_([(r.account, r.source, r.scan, r.run_id) for r in chunk]))
                    .order_by(run_posts.c.posted_at, run_posts.c.channel)
                )
                found += [_run_post(row) for row in (await conn.execute(statement)).all()]
        return found

    async def thread_posts(self, account: str, posted_in: str, message_ts: str) -> list[RunPost]:
        under = (
            select(run_posts.c.source, run_posts.c.scan, run_posts.c.run_id)
            .where(
                run_posts.c.account == account,
                run_posts.c.posted_in == posted_in,
                run_posts.c.message_ts == message_ts,
            )
            .distinct()
            .subquery()
        )
        statement = (
            select(run_posts)
            .join(
                under,
                and_(
                    run_posts.c.source == under.c.source,
                    run_posts.c.scan == under.c.scan,
                    run_posts.c.run_id == under.c.run_id,
                ),
            )
            .where(run_posts.c.account == account)
            .order_by(run_posts.c.posted_at, run_posts.c.channel)
        )
        async with self._read() as conn:
            return [_run_post(row) for row in (await conn.execute(statement)).all()]

    async def ping(self) -> None:
        """One round trip to the database (`SELECT 1`); raises what the driver raises when it is gone."""
        async with self._engine.connect() as conn:
            await conn.execute(select(1))

    # leases ---------------------------------------------------------------------------------------

    async def acquire_lease(self, name: str, *, holder: str, ttl_seconds: float) -> bool:
        ttl = timedelta(seconds=ttl_seconds)
        now: ColumnElement[datetime]
        expires: ColumnElement[datetime]
        if self._dialect == "postgresql":
            now = func.now()  # the server's clock, the same for every replica
            expires = func.now() + bindparam("ttl", ttl, type_=Interval())
        else:
            at = _now()  # SQLite's clock is this host's
            now = bindparam("now", at, type_=UtcDateTime())
            expires = bindparam("expires", at + ttl, type_=UtcDateTime())
        insert = self._insert(leases).values(name=name, holder=holder, expires_at=expires)
        statement = insert.on_conflict_do_update(
            index_elements=[leases.c.name],
            set_={"holder": insert.excluded.holder, "expires_at": insert.excluded.expires_at},
            where=or_(leases.c.expires_at < now, leases.c.holder == insert.excluded.holder),
        ).returning(leases.c.holder)
        async with self._write() as conn:
            won = (await conn.execute(statement)).scalar_one_or_none()
        return bool(won == holder)

    async def release_lease(self, name: str, *, holder: str) -> None:
        async with self._write() as conn:
            await conn.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))
