"""The store's tables as the code reads and writes them (SQLAlchemy 2 Core), for SQLite and PostgreSQL.

This module is the *current* shape of the schema. The database gets it from `migrations.py`, whose steps
are frozen once released: a change here goes with a new migration step, and
`tests/store/test_migrations.py` fails when the migrated database and these tables disagree.

Conventions:
- Times are `UtcDateTime`: stored in UTC (`timestamptz` on PostgreSQL, ISO text on SQLite), always
  returned timezone-aware in UTC.
- `watches.collection` / `watches.source` store "" for "any" (not NULL): NULLs are distinct in a unique
  constraint on both databases, so a NULL there would let the same watch be added twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}


def as_utc(value: datetime) -> datetime:
    """`value` in UTC, timezone-aware; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A point in time: stored in UTC, returned timezone-aware (UTC) on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = as_utc(value)
        # SQLite's DATETIME is text without an offset: store the UTC wall time
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - drivers return datetimes
            value = datetime.fromisoformat(str(value))
        return as_utc(value)


# names are short and bounded: Purview names are ≤ 64 characters, run ids are GUIDs, Slack ids short
NAME = 256

metadata = MetaData(naming_convention=NAMING)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(NAME), nullable=False),
    Column("source", String(NAME), nullable=False),
    Column("scan", String(NAME), nullable=False),
    Column("run_id", String(NAME), nullable=False),
    Column("status", String(64), nullable=False),
    Column("end_time", UtcDateTime()),
    Column("state", String(16), nullable=False),  # "claimed" | "posted"
    Column("holder", String(NAME), nullable=False),
    Column("claimed_at", UtcDateTime(), nullable=False),
    Column("fingerprint", Text),
    Column("channel", String(64)),
    Column("message_ts", String(64)),
    # the claim: exactly one insert of a run succeeds, whoever (replica, watcher, webhook) makes it
    UniqueConstraint("account", "source", "scan", "run_id"),
    Index(None, "account", "state"),
)

scan_cursors = Table(
    "scan_cursors",
    metadata,
    Column("account", String(NAME), primary_key=True),
    Column("source", String(NAME), primary_key=True),
    Column("scan", String(NAME), primary_key=True),
    Column("last_run_id", String(NAME)),
    Column("last_status", String(64)),
    Column("last_end_time", UtcDateTime()),
    Column("failing_since", UtcDateTime()),
    Column("thread_channel", String(64)),
    Column("thread_ts", String(64)),
)

reports = Table(
    "reports",
    metadata,
    Column("account", String(NAME), primary_key=True),
    Column("source", String(NAME), primary_key=True),
    Column("report", Text, nullable=False),  # JSON text
    Column("updated_at", UtcDateTime(), nullable=False),
)

watches = Table(
    "watches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(64), nullable=False),
    Column("account", String(NAME), nullable=False),
    Column("collection", String(NAME), nullable=False, server_default=""),  # "" = any
    Column("source", String(NAME), nullable=False, server_default=""),  # "" = any
    UniqueConstraint("channel", "account", "collection", "source"),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("holder", String(NAME), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)

# Slack deliveries already taken (event ids, interaction trigger ids): a retry or a replay of one of them
# inserts the same key and fails, so it is worked once whichever replica or restart receives it. Rows
# older than the dedupe window are deleted (`SqlStore.prune_deliveries`).
deliveries = Table(
    "deliveries",
    metadata,
    Column("key", String(NAME), primary_key=True),
    Column("seen_at", UtcDateTime(), nullable=False),
    Index(None, "seen_at"),
)

# Where each claimed run was posted, per target channel: a failure goes to its routed channel and to each
# channel watching it (one parent per channel). `posted_in` is the channel itself or the fallback channel
# (`note`: why the target refused); NULL with `message_ts` NULL: delivered nowhere.
run_posts = Table(
    "run_posts",
    metadata,
    Column("account", String(NAME), primary_key=True),
    Column("source", String(NAME), primary_key=True),
    Column("scan", String(NAME), primary_key=True),
    Column("run_id", String(NAME), primary_key=True),
    Column("channel", String(64), primary_key=True),
    Column("posted_in", String(64)),
    Column("message_ts", String(64)),
    Column("note", Text),
    Column("posted_at", UtcDateTime(), nullable=False),
    Index(None, "account", "posted_in", "message_ts"),
)

# Sources whose automatic failure posts are held back until `until` (`/purview-check mute SOURCE 4h`): their
# failed runs are still claimed and recorded, not posted. An expired row is as good as none.
mutes = Table(
    "mutes",
    metadata,
    Column("account", String(NAME), primary_key=True),
    Column("source", String(NAME), primary_key=True),
    Column("until", UtcDateTime(), nullable=False),
    Column("muted_by", String(64)),
    Column("muted_at", UtcDateTime(), nullable=False),
)

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False),
    Column("applied_at", UtcDateTime(), nullable=False),
)
