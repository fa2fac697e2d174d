"""Versioned migrations: applied once, transactional, safe when several processes start at once."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import sys
from pathlib import Path

import pytest
from sqlalchemy import Connection, UniqueConstraint, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store import RunRef, SqlStore, open_store
from bot.store.migrations import LATEST, MIGRATIONS, Migration, migrate
from bot.store.schema import metadata, schema_version
from bot.store.sql import create_engine_for, normalize_url

ROOT = Path(__file__).resolve().parents[2]
TABLES = {table.name for table in metadata.sorted_tables}  # schema.py's; the first test checks it
V1_TABLES = {"runs", "scan_cursors", "reports", "watches", "leases", "schema_version"}

OPEN_AND_CLOSE = """
import asyncio, sys
from bot.store import open_store

async def main() -> None:
    store = await open_store(sys.argv[1])
    await store.close()

asyncio.run(main())
"""


async def _versions(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(schema_version.c.version))).scalars())


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_fresh_database_gets_the_schema_of_schema_py(store: SqlStore) -> None:
    """The frozen steps and `schema.py` agree: same tables, columns, nullability, keys."""
    assert await _versions(store.engine) == [m.version for m in MIGRATIONS]

    def shape(conn: Connection) -> dict[str, object]:
        inspector = inspect(conn)
        found: dict[str, object] = {}
        for name in sorted(inspector.get_table_names()):
            found[name] = (
                sorted((c["name"], c["nullable"]) for c in inspector.get_columns(name)),
                sorted(inspector.get_pk_constraint(name)["constrained_columns"]),
                sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(name)),
            )
        return found

    async with store.engine.connect() as conn:
        migrated = await conn.run_sync(shape)
    expected = {
        table.name: (
            sorted((c.name, bool(c.nullable) and not c.primary_key) for c in table.columns),
            sorted(c.name for c in table.primary_key.columns),
            sorted(
                tuple(c.name for c in u.columns) for u in table.constraints if isinstance(u, UniqueConstraint)
            ),
        )
        for table in metadata.sorted_tables
    }
    assert migrated == expected


async def test_migrations_run_twice_apply_once(db_url: str) -> None:
    engine = create_engine_for(db_url)
    try:
        assert await migrate(engine) == [m.version for m in MIGRATIONS]
        assert await migrate(engine) == []
        assert await _versions(engine) == [m.version for m in MIGRATIONS]
        assert await _tables(engine) == TABLES
    finally:
        await engine.dispose()


async def test_a_released_database_is_upgraded_keeping_its_state(db_url: str) -> None:
    """A database of the first release (version 1, with a claimed run) gets the later steps on start."""
    ref = RunRef("contoso-pv", "sales-adls", "weekly", "run-1")
    engine = create_engine_for(db_url)
    assert await migrate(engine, MIGRATIONS[:1]) == [1]
    assert await _tables(engine) == V1_TABLES
    released = SqlStore(engine)  # the first release's process, on its own schema
    assert await released.claim_run(ref, status="Failed", end_time=None, holder="v1")
    await released.close()

    store = await SqlStore.open(db_url)  # the new release starting on it
    try:
        assert await _versions(store.engine) == [m.version for m in MIGRATIONS]
        assert await _tables(store.engine) == TABLES
        record = await store.run_record(ref)
        assert record is not None and record.holder == "v1"
        assert await store.claim_delivery("event:Ev1") is True
    finally:
        await store.close()


async def test_concurrent_starts_in_processes_and_engines(db_url: str) -> None:
    """Four processes and eight engines of this one open the same empty database at the same moment."""
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", OPEN_AND_CLOSE, db_url, cwd=ROOT, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(4)
    ]
    stores = await asyncio.gather(*(open_store(db_url) for _ in range(8)))
    for store in stores:
        await store.close()
    for process in processes:
        _, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()

    engine = create_engine_for(db_url)
    try:
        assert await _versions(engine) == [m.version for m in MIGRATIONS]  # each version recorded once
        assert await _tables(engine) == TABLES
    finally:
        await engine.dispose()


async def test_a_new_step_is_applied_once_by_concurrent_starts(db_url: str) -> None:
    calls: list[int] = []

    def add_column(conn: Connection) -> None:
        calls.append(1)
        conn.execute(text("ALTER TABLE reports ADD COLUMN note TEXT"))

    steps = (*MIGRATIONS, Migration(LATEST + 1, "reports.note", add_column))
    engines = [create_engine_for(db_url) for _ in range(6)]
    try:
        await migrate(engines[0])  # the released version
        applied = await asyncio.gather(*(migrate(e, steps) for e in engines))
        assert sorted(applied) == [[], [], [], [], [], [LATEST + 1]]
        assert calls == [1]
        assert await _versions(engines[0]) == [*(m.version for m in MIGRATIONS), LATEST + 1]
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_failing_step_rolls_back_entirely(db_url: str) -> None:
    """DDL is transactional on both databases: a step that fails half-way leaves nothing behind."""

    def half_done(conn: Connection) -> None:
        conn.execute(text("CREATE TABLE half_done (x INTEGER)"))
        conn.execute(text("ALTER TABLE reports ADD COLUMN note TEXT"))
        raise RuntimeError("step failed")

    engine = create_engine_for(db_url)
    try:
        with pytest.raises(RuntimeError, match="step failed"):
            await migrate(engine, (*MIGRATIONS, Migration(LATEST + 1, "broken", half_done)))
        assert await _tables(engine) == set()  # not even schema_version: all in one transaction
        await migrate(engine)
        with pytest.raises(RuntimeError, match="step failed"):
            await migrate(engine, (*MIGRATIONS, Migration(LATEST + 1, "broken", half_done)))
        assert await _tables(engine) == TABLES
        assert await _versions(engine) == [m.version for m in MIGRATIONS]
        async with engine.connect() as conn:
            columns = await conn.run_sync(
                lambda c: [col["name"] for col in inspect(c).get_columns("reports")]
            )
        assert "note" not in columns
    finally:
        await engine.dispose()


async def test_a_database_newer_than_the_code_is_logged(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_engine_for(db_url)
    try:
        await migrate(engine, (*MIGRATIONS, Migration(LATEST + 1, "from the future", lambda c: None)))
        with caplog.at_level(logging.WARNING, logger="bot.store.migrations"):
            assert await migrate(engine) == []
        assert f"[{LATEST + 1}]" in caplog.text
    finally:
        await engine.dispose()


def test_steps_must_be_ordered() -> None:
    steps = (Migration(2, "b", lambda c: None), Migration(1, "a", lambda c: None))
    engine = create_engine_for("sqlite+aiosqlite://")
    try:
        with pytest.raises(RuntimeError, match="unique and increasing"):
            asyncio.run(migrate(engine, steps))
    finally:
        asyncio.run(engine.dispose())


# SQLite specifics ------------------------------------------------------------------------------------


async def test_sqlite_file_is_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = await SqlStore.open(f"sqlite+aiosqlite:///{path}")
    try:
        async with store.engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 30_000
            assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        await store.close()
    with sqlite3.connect(path) as plain:  # persistent in the file, for every process that opens it
        assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_sqlite_memory_database_serves_concurrent_coroutines() -> None:
    store = await open_store("sqlite+aiosqlite:///:memory:")
    try:
        ref = RunRef("a", "s", "scan", "r")
        results = await asyncio.gather(
            *(store.claim_run(ref, status="Failed", end_time=None, holder=str(i)) for i in range(10))
        )
        assert results.count(True) == 1
        assert len(await store.unposted("a")) == 1
    finally:
        await store.close()


async def test_sqlite_too_old_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.31.1")
    with pytest.raises(RuntimeError, match=r"SQLite 3\.31\.1 is too old"):
        await open_store(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///state.db", "sqlite+aiosqlite:///state.db"),
        ("sqlite+aiosqlite:///state.db", "sqlite+aiosqlite:///state.db"),
        ("postgres://u@db/pvb", "postgresql+asyncpg://u@db/pvb"),
        ("postgresql://u@db/pvb", "postgresql+asyncpg://u@db/pvb"),
        ("postgresql+psycopg://u@db/pvb", "postgresql+asyncpg://u@db/pvb"),
    ],
)
def test_database_urls(given: str, expected: str) -> None:
    assert normalize_url(given).render_as_string() == expected


def test_unsupported_database_url() -> None:
    with pytest.raises(ValueError, match="unsupported PURVIEW_BOT_DATABASE_URL backend 'mysql'"):
        normalize_url("mysql+aiomysql://u@db/pvb")
