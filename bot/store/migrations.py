"""Versioned schema migrations, applied on start: Alembic's versioned path without its machinery.

`MIGRATIONS` is an ordered list of steps, each with a version number. `migrate()` runs, in ONE
transaction, under a database-wide lock:

1. take the lock: PostgreSQL `pg_advisory_xact_lock(MIGRATION_LOCK)` (released at commit), SQLite
   `BEGIN IMMEDIATE` (the database's single write lock, waited for through the busy timeout);
2. create `schema_version` if it does not exist;
3. apply every step whose version is not recorded there, in order, recording each;
4. commit. A failing step rolls back the whole run: the database stays at its previous version.

Several processes starting at once therefore queue on the lock; the first applies the steps, the others
find them recorded and apply nothing. DDL is transactional on both databases (SQLite's too, as the store's
connections emit their own BEGIN instead of letting the `sqlite3` module decide, see `sql.py`).

Rules for new steps: never edit a released step (databases in the field have it recorded as applied);
append a step with the next version and change `schema.py` to match; a step is a function of a
synchronous `Connection` and may branch on `conn.dialect.name`. Steps should be additive (new tables,
nullable columns, indexes) so that replicas still running the previous release keep working during a
rolling upgrade; a database newer than the code is logged, not refused, for the same reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store import schema

log = logging.getLogger(__name__)

# a fixed key for pg_advisory_xact_lock, shared by every purview-bot process on the database ("pvbm")
MIGRATION_LOCK = 0x7076626D

# the execution option that makes the SQLite connection open its transaction with BEGIN IMMEDIATE
SQLITE_IMMEDIATE = "purview_bot_sqlite_immediate"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _v1_initial(conn: Connection) -> None:
    """The schema as first released. Frozen: its own table definitions, not `schema.py`'s."""
    md = MetaData(naming_convention=schema.NAMING)
    when = DateTime(timezone=True)
    Table(
        "runs",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("account", String(256), nullable=False),
        Column("source", String(256), nullable=False),
        Column("scan", String(256), nullable=False),
        Column("run_id", String(256), nullable=False),
        Column("status", String(64), nullable=False),
        Column("end_time", when),
        Column("state", String(16), nullable=False),
        Column("holder", String(256), nullable=False),
        Column("claimed_at", when, nullable=False),
        Column("fingerprint", Text),
        Column("channel", String(64)),
        Column("message_ts", String(64)),
        UniqueConstraint("account", "source", "scan", "run_id"),
        Index(None, "account", "state"),
    )
    Table(
        "scan_cursors",
        md,
        Column("account", String(256), primary_key=True),
        Column("source", String(256), primary_key=True),
        Column("scan", String(256), primary_key=True),
        Column("last_run_id", String(256)),
        Column("last_status", String(64)),
        Column("last_end_time", when),
        Column("failing_since", when),
        Column("thread_channel", String(64)),
        Column("thread_ts", String(64)),
    )
    Table(
        "reports",
        md,
        Column("account", String(256), primary_key=True),
        Column("source", String(256), primary_key=True),
        Column("report", Text, nullable=False),
        Column("updated_at", when, nullable=False),
    )
    Table(
        "watches",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("channel", String(64), nullable=False),
        Column("account", String(256), nullable=False),
        Column("collection", String(256), nullable=False, server_default=""),
        Column("source", String(256), nullable=False, server_default=""),
        UniqueConstraint("channel", "account", "collection", "source"),
    )
    Table(
        "leases",
        md,
        Column("name", String(256), primary_key=True),
        Column("holder", String(256), nullable=False),
        Column("expires_at", when, nullable=False),
    )
    md.create_all(conn, checkfirst=False)


def _v2_deliveries(conn: Connection) -> None:
    """Slack deliveries already taken (retries and replays are worked once). Frozen like every step."""
    md = MetaData(naming_convention=schema.NAMING)
    Table(
        "deliveries",
        md,
        Column("key", String(256), primary_key=True),
        Column("seen_at", DateTime(timezone=True), nullable=False),
        Index(None, "seen_at"),
    )
    md.create_all(conn, checkfirst=False)


def _v3_run_posts(conn: Connection) -> None:
    """Per-channel posts of a claimed run (the routed channel and each watching channel get one parent
    each). Frozen like every step."""
    md = MetaData(naming_convention=schema.NAMING)
    Table(
        "run_posts",
        md,
        Column("account", String(256), primary_key=True),
        Column("source", String(256), primary_key=True),
        Column("scan", String(256), primary_key=True),
        Column("run_id", String(256), primary_key=True),
        Column("channel", String(64), primary_key=True),
        Column("posted_in", String(64)),
        Column("message_ts", String(64)),
        Column("note", Text),
        Column("posted_at", DateTime(timezone=True), nullable=False),
        Index(None, "account", "posted_in", "message_ts"),
    )
    md.create_all(conn, checkfirst=False)


def _v4_mutes(conn: Connection) -> None:
    """Muted sources (`/purview-check mute SOURCE 4h`). Frozen like every step."""
    md = MetaData(naming_convention=schema.NAMING)
    Table(
        "mutes",
        md,
        Column("account", String(256), primary_key=True),
        Column("source", String(256), primary_key=True),
        Column("until", DateTime(timezone=True), nullable=False),
        Column("muted_by", String(64)),
        Column("muted_at", DateTime(timezone=True), nullable=False),
    )
    md.create_all(conn, checkfirst=False)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "runs, scan_cursors, reports, watches, leases", _v1_initial),
    Migration(2, "deliveries", _v2_deliveries),
    Migration(3, "run_posts", _v3_run_posts),
    Migration(4, "mutes", _v4_mutes),
)

LATEST = MIGRATIONS[-1].version


def _check_order(steps: tuple[Migration, ...]) -> None:
    versions = [m.version for m in steps]
    if versions != sorted(set(versions)):
        raise RuntimeError(f"migration versions must be unique and increasing: {versions}")


def migrate_sync(conn: Connection, steps: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply the missing steps on `conn`, already inside its transaction; returns the versions applied."""
    _check_order(steps)
    if conn.dialect.name == "postgresql":
        # serialises concurrent starts; released when this transaction ends
        conn.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
    schema.schema_version.create(conn, checkfirst=True)
    applied = set(conn.execute(select(schema.schema_version.c.version)).scalars())
    known = {m.version for m in steps}
    if newer := sorted(applied - known):
        log.warning(
            "database schema has versions %s that this purview-bot does not know (it knows up to %s): "
            "a newer release migrated it; continuing",
            newer,
            steps[-1].version if steps else 0,
        )
    done: list[int] = []
    for step in steps:
        if step.version in applied:
            continue
        log.info("applying schema migration %d: %s", step.version, step.description)
        step.apply(conn)
        conn.execute(
            schema.schema_version.insert().values(
                version=step.version, description=step.description, applied_at=datetime.now(UTC)
            )
        )
        done.append(step.version)
    return done


async def migrate(engine: AsyncEngine, steps: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Bring the database to the latest version, safely when several processes start at once."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(**{SQLITE_IMMEDIATE: True})
        async with conn.begin():
            return await conn.run_sync(migrate_sync, steps)
