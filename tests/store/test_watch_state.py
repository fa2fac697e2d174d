"""Mutes and the per-account listing of last reports (migration 4), on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from bot.store import Mute, SqlStore
from bot.store.migrations import MIGRATIONS, migrate
from bot.store.sql import create_engine_for

AT = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


async def test_mute_replace_list_and_unmute(store: SqlStore) -> None:
    assert await store.mutes("contoso-pv") == []
    await store.mute(Mute("contoso-pv", "sales-adls", AT + timedelta(hours=4), "U1"))
    await store.mute(Mute("contoso-pv", "hr-sql", AT.astimezone(timezone(timedelta(hours=1))), None))
    await store.mute(Mute("fabrikam-pv", "sales-adls", AT, "U2"))
    # a second mute of the same source replaces the first
    await store.mute(Mute("contoso-pv", "sales-adls", AT + timedelta(hours=8), "U3"))
    mutes = await store.mutes("contoso-pv")
    assert [(m.source, m.until, m.muted_by) for m in mutes] == [
        ("hr-sql", AT, None),
        ("sales-adls", AT + timedelta(hours=8), "U3"),
    ]
    assert all(m.until.tzinfo is not None and m.until.utcoffset() == timedelta(0) for m in mutes)
    assert await store.unmute("contoso-pv", "sales-adls") is True
    assert await store.unmute("contoso-pv", "sales-adls") is False
    assert [m.source for m in await store.mutes("contoso-pv")] == ["hr-sql"]
    assert [m.source for m in await store.mutes("fabrikam-pv")] == ["sales-adls"]


async def test_last_reports_of_an_account(store: SqlStore) -> None:
    assert await store.last_reports("contoso-pv") == []
    await store.save_report("contoso-pv", "sales-adls", {"status": "fail"})
    await store.save_report("contoso-pv", "hr-sql", {"status": "pass"})
    await store.save_report("fabrikam-pv", "x", {"status": "warn"})
    found = await store.last_reports("contoso-pv")
    assert [(r.source, r.report["status"]) for r in found] == [("hr-sql", "pass"), ("sales-adls", "fail")]
    assert all(r.updated_at.tzinfo is not None for r in found)


async def test_a_version_3_database_gets_the_mutes_table_keeping_its_watches(db_url: str) -> None:
    engine = create_engine_for(db_url)
    assert await migrate(engine, MIGRATIONS[:3]) == [1, 2, 3]
    await engine.dispose()
    store = await SqlStore.open(db_url)
    try:
        await store.mute(Mute("contoso-pv", "sales-adls", AT, "U1"))
        assert [m.source for m in await store.mutes("contoso-pv")] == ["sales-adls"]
    finally:
        await store.close()
