"""Every method of the store, on SQLite and on PostgreSQL (see conftest.py)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.store import RunRef, ScanCursor, SqlStore, Store, Watch, open_store

REF = RunRef(account="contoso-pv", source="sales-adls", scan="weekly", run_id="run-1")
PARIS = timezone(timedelta(hours=1))


def _utc(record_time: datetime | None) -> datetime:
    assert record_time is not None
    assert record_time.tzinfo is not None and record_time.utcoffset() == timedelta(0)
    return record_time


async def test_open_store_returns_a_store(db_url: str) -> None:
    store: Store = await open_store(db_url)
    try:
        assert await store.watches() == []
    finally:
        await store.close()


# runs -------------------------------------------------------------------------------------------------


async def test_claim_run_once(store: SqlStore) -> None:
    end = datetime(2026, 11, 28, 9, 14, 9, 123456, tzinfo=PARIS)  # 08:14:09.123456Z
    before = datetime.now(UTC)
    assert await store.claim_run(REF, status="Failed", end_time=end, holder="a") is True
    assert await store.claim_run(REF, status="Failed", end_time=end, holder="b") is False

    record = await store.run_record(REF)
    assert record is not None
    assert record.ref == REF
    assert (record.status, record.state, record.holder) == ("Failed", "claimed", "a")
    assert _utc(record.end_time) == end
    assert _utc(record.end_time).hour == 8
    assert (
        before - timedelta(seconds=5) <= _utc(record.claimed_at) <= datetime.now(UTC) + timedelta(seconds=5)
    )
    assert (record.fingerprint, record.channel, record.message_ts) == (None, None, None)


async def test_claim_is_per_run(store: SqlStore) -> None:
    other_scan = RunRef(REF.account, REF.source, "daily", REF.run_id)
    other_run = RunRef(REF.account, REF.source, REF.scan, "run-2")
    other_account = RunRef("fabrikam-pv", REF.source, REF.scan, REF.run_id)
    for ref in (REF, other_scan, other_run, other_account):
        assert await store.claim_run(ref, status="Failed", end_time=None, holder="a")
    record = await store.run_record(other_run)
    assert record is not None and record.end_time is None


async def test_run_record_missing(store: SqlStore) -> None:
    assert await store.run_record(REF) is None


async def test_reclaim(store: SqlStore) -> None:
    assert await store.reclaim(REF, holder="b", stale_before=datetime.now(UTC)) is False  # no claim
    await store.claim_run(REF, status="Failed", end_time=None, holder="a")
    claimed = await store.run_record(REF)
    assert claimed is not None

    # not stale yet
    assert (
        await store.reclaim(REF, holder="b", stale_before=claimed.claimed_at - timedelta(minutes=1)) is False
    )
    record = await store.run_record(REF)
    assert record is not None and record.holder == "a"

    # stale: taken over, and the claim's time restarts
    assert await store.reclaim(REF, holder="b", stale_before=datetime.now(UTC) + timedelta(seconds=1)) is True
    record = await store.run_record(REF)
    assert record is not None
    assert (record.holder, record.state) == ("b", "claimed")
    assert record.claimed_at >= claimed.claimed_at

    # posted runs are never reclaimed
    await store.mark_posted([REF], channel="C1", message_ts="1.2", fingerprint=None)
    assert await store.reclaim(REF, holder="c", stale_before=datetime.now(UTC) + timedelta(hours=1)) is False


async def test_reclaim_accepts_other_time_zones(store: SqlStore) -> None:
    await store.claim_run(REF, status="Failed", end_time=None, holder="a")
    future = (datetime.now(UTC) + timedelta(seconds=2)).astimezone(PARIS)
    assert await store.reclaim(REF, holder="b", stale_before=future) is True


async def test_mark_posted_several_runs(store: SqlStore) -> None:
    refs = [RunRef(REF.account, REF.source, f"scan-{i}", f"run-{i}") for i in range(3)]
    for ref in refs:
        await store.claim_run(ref, status="Failed", end_time=None, holder="a")
    await store.mark_posted(refs[:2], channel="C1", message_ts="1700000000.000100", fingerprint="kv:list")
    for ref in refs[:2]:
        record = await store.run_record(ref)
        assert record is not None
        assert (record.state, record.channel, record.message_ts, record.fingerprint) == (
            "posted",
            "C1",
            "1700000000.000100",
            "kv:list",
        )
    record = await store.run_record(refs[2])
    assert record is not None and record.state == "claimed" and record.channel is None
    assert [r.ref for r in await store.unposted(REF.account)] == [refs[2]]


async def test_mark_posted_many_and_duplicates(store: SqlStore) -> None:
    refs = [RunRef(REF.account, REF.source, "weekly", f"run-{i}") for i in range(510)]  # more than one chunk
    claims = await asyncio.gather(
        *(store.claim_run(r, status="Failed", end_time=None, holder="a") for r in refs)
    )
    assert all(claims)
    await store.mark_posted([*refs, refs[0]], channel="C1", message_ts="1.1", fingerprint=None)
    assert await store.unposted(REF.account) == []


async def test_mark_posted_unclaimed_is_logged(store: SqlStore, caplog: pytest.LogCaptureFixture) -> None:
    await store.claim_run(REF, status="Failed", end_time=None, holder="a")
    stranger = RunRef(REF.account, REF.source, REF.scan, "never-claimed")
    with caplog.at_level(logging.WARNING, logger="bot.store.sql"):
        await store.mark_posted([REF, stranger], channel="C1", message_ts="1.1", fingerprint=None)
    assert "1 of 2 runs were never claimed" in caplog.text
    assert await store.run_record(stranger) is None
    await store.mark_posted([], channel="C1", message_ts="1.1", fingerprint=None)  # nothing to do


async def test_unposted_after_claim_without_mark_posted(store: SqlStore) -> None:
    first = RunRef(REF.account, REF.source, "weekly", "r1")
    second = RunRef(REF.account, "hr-sql", "nightly", "r2")
    elsewhere = RunRef("fabrikam-pv", REF.source, "weekly", "r3")
    for ref in (first, second, elsewhere):
        await store.claim_run(ref, status="Failed", end_time=None, holder="dead-process")
    unposted = await store.unposted(REF.account)
    assert [r.ref for r in unposted] == [first, second]  # oldest claim first; the account's only
    assert all(r.state == "claimed" and r.holder == "dead-process" for r in unposted)
    await store.mark_posted([first], channel="C1", message_ts="1.1", fingerprint=None)
    assert [r.ref for r in await store.unposted(REF.account)] == [second]
    assert await store.unposted("nobody") == []


# cursors ----------------------------------------------------------------------------------------------


async def test_cursors(store: SqlStore) -> None:
    assert await store.cursors("contoso-pv") == {}
    failed_at = datetime(2026, 11, 28, 8, 14, tzinfo=UTC)
    weekly = ScanCursor(
        "contoso-pv",
        "sales-adls",
        "weekly",
        last_run_id="r1",
        last_status="Failed",
        last_end_time=failed_at.astimezone(PARIS),
        failing_since=failed_at,
        thread_channel="C1",
        thread_ts="1.1",
    )
    daily = ScanCursor("contoso-pv", "hr-sql", "daily", last_run_id="r9", last_status="Succeeded")
    other = ScanCursor("fabrikam-pv", "sales-adls", "weekly", last_run_id="x")
    for cursor in (weekly, daily, other):
        await store.save_cursor(cursor)

    cursors = await store.cursors("contoso-pv")
    assert set(cursors) == {("sales-adls", "weekly"), ("hr-sql", "daily")}
    assert cursors[("sales-adls", "weekly")] == weekly  # equal instants
    assert _utc(cursors[("sales-adls", "weekly")].last_end_time) == failed_at
    assert cursors[("hr-sql", "daily")] == daily

    # an upsert: the recovery clears the thread
    recovered = ScanCursor("contoso-pv", "sales-adls", "weekly", last_run_id="r2", last_status="Succeeded")
    await store.save_cursor(recovered)
    cursors = await store.cursors("contoso-pv")
    assert len(cursors) == 2
    assert cursors[("sales-adls", "weekly")] == recovered
    assert (await store.cursors("fabrikam-pv")) == {("sales-adls", "weekly"): other}


# reports ----------------------------------------------------------------------------------------------


async def test_reports(store: SqlStore) -> None:
    assert await store.last_report("contoso-pv", "sales-adls") is None
    report = {
        "schema": "purview-bot/report@1",
        "status": "fail",
        "findings": [{"check": "source-access", "status": "fail", "title": "Purview — ne peut pas lire"}],
        "elapsedMs": 412,
        "nested": {"ok": True, "none": None, "ratio": 0.5},
    }
    await store.save_report("contoso-pv", "sales-adls", report)
    assert await store.last_report("contoso-pv", "sales-adls") == report
    assert await store.last_report("contoso-pv", "hr-sql") is None

    newer = {**report, "status": "pass", "findings": []}
    await store.save_report("contoso-pv", "sales-adls", newer)
    assert await store.last_report("contoso-pv", "sales-adls") == newer
    assert await store.last_report("fabrikam-pv", "sales-adls") is None


# watches ----------------------------------------------------------------------------------------------


async def test_watches(store: SqlStore) -> None:
    account_wide = Watch("C1", "contoso-pv")
    collection = Watch("C1", "contoso-pv", collection="sales")
    source = Watch("C2", "contoso-pv", source="hr-sql")
    both = Watch("C2", "contoso-pv", collection="hr", source="hr-sql")
    for watch in (source, account_wide, collection, both):
        await store.add_watch(watch)
    await store.add_watch(Watch("C1", "contoso-pv"))  # idempotent, also with the "any" fields
    await store.add_watch(collection)
    assert await store.watches() == [account_wide, collection, source, both]

    await store.remove_watch(Watch("C1", "contoso-pv"))
    assert await store.watches() == [collection, source, both]
    await store.remove_watch(Watch("C9", "contoso-pv"))  # absent: nothing happens
    await store.remove_watch(source)
    assert await store.watches() == [collection, both]


# leases -----------------------------------------------------------------------------------------------


async def test_lease_take_renew_and_refuse(store: SqlStore) -> None:
    assert await store.acquire_lease("sweep:contoso-pv", holder="a", ttl_seconds=60) is True
    assert await store.acquire_lease("sweep:contoso-pv", holder="b", ttl_seconds=60) is False
    assert await store.acquire_lease("sweep:contoso-pv", holder="a", ttl_seconds=60) is True  # renewal
    assert await store.acquire_lease("sweep:fabrikam-pv", holder="b", ttl_seconds=60) is True  # another


async def test_lease_expiry_lets_the_other_take_it(store: SqlStore) -> None:
    assert await store.acquire_lease("sweep:x", holder="a", ttl_seconds=0.3) is True
    assert await store.acquire_lease("sweep:x", holder="b", ttl_seconds=0.3) is False
    await asyncio.sleep(0.5)
    assert await store.acquire_lease("sweep:x", holder="b", ttl_seconds=60) is True
    assert await store.acquire_lease("sweep:x", holder="a", ttl_seconds=60) is False


async def test_lease_renewal_keeps_it_past_the_first_ttl(store: SqlStore) -> None:
    assert await store.acquire_lease("sweep:x", holder="a", ttl_seconds=0.6) is True
    for _ in range(4):  # renewed every ttl/3: never expires although 4 × 0.2 s > 0.6 s
        await asyncio.sleep(0.2)
        assert await store.acquire_lease("sweep:x", holder="a", ttl_seconds=0.6) is True
        assert await store.acquire_lease("sweep:x", holder="b", ttl_seconds=0.6) is False


async def test_release_lease(store: SqlStore) -> None:
    await store.acquire_lease("sweep:x", holder="a", ttl_seconds=60)
    await store.release_lease("sweep:x", holder="b")  # not b's: nothing happens
    assert await store.acquire_lease("sweep:x", holder="b", ttl_seconds=60) is False
    await store.release_lease("sweep:x", holder="a")
    assert await store.acquire_lease("sweep:x", holder="b", ttl_seconds=60) is True
    await store.release_lease("sweep:never", holder="a")


# Slack deliveries -----------------------------------------------------------------------------------


async def test_claim_delivery_once(store: SqlStore) -> None:
    assert await store.claim_delivery("event:Ev001") is True
    assert await store.claim_delivery("event:Ev001") is False  # Slack's retry, or a replay
    assert await store.claim_delivery("event:Ev002") is True
    assert await store.claim_delivery("interaction:" + "a" * 40) is True


async def test_prune_deliveries_forgets_only_the_old_ones(store: SqlStore) -> None:
    assert await store.claim_delivery("event:old")
    await asyncio.sleep(0.05)
    cut = datetime.now(UTC)
    await asyncio.sleep(0.05)
    assert await store.claim_delivery("event:new")
    assert await store.prune_deliveries(cut) == 1
    assert await store.claim_delivery("event:old") is True  # forgotten: taken anew
    assert await store.claim_delivery("event:new") is False  # still remembered
    assert await store.prune_deliveries(cut) == 0


# lifecycle --------------------------------------------------------------------------------------------


async def test_state_survives_reopening(db_url: str) -> None:
    first = await open_store(db_url)
    await first.claim_run(REF, status="Failed", end_time=None, holder="a")
    await first.save_report("contoso-pv", "sales-adls", {"status": "fail"})
    assert await first.claim_delivery("event:before-the-restart") is True
    await first.close()
    await first.close()  # idempotent

    second = await open_store(db_url)
    try:
        assert await second.claim_run(REF, status="Failed", end_time=None, holder="b") is False
        assert await second.claim_delivery("event:before-the-restart") is False  # a restart remembers
        assert await second.last_report("contoso-pv", "sales-adls") == {"status": "fail"}
    finally:
        await second.close()
