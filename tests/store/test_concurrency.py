"""Races between processes: separate engines (own connection pools) on one database, as replicas are."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.store import RunRef, SqlStore, sql

REF = RunRef(account="contoso-pv", source="sales-adls", scan="weekly", run_id="run-1")


async def _stale_soon() -> datetime:
    """A `stale_before` after the claim just made, and before any claim made from now on (as in
    production, where it is now − 2 × the deadline: a reclaim's own fresh claim is not stale)."""
    await asyncio.sleep(0.2)
    return datetime.now(UTC) - timedelta(seconds=0.1)


@pytest.fixture
async def replicas(db_url: str) -> AsyncIterator[list[SqlStore]]:
    """20 stores on the same database, each with its own engine, each already connected."""
    first = await SqlStore.open(db_url)
    others = await asyncio.gather(*(SqlStore.open(db_url) for _ in range(19)))
    stores = [first, *others]
    try:
        await asyncio.gather(*(s.run_record(REF) for s in stores))  # warm: a pooled connection each
        yield stores
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_twenty_replicas_claim_one_run_exactly_once(replicas: list[SqlStore]) -> None:
    for round_ in range(3):
        ref = RunRef(REF.account, REF.source, REF.scan, f"run-{round_}")
        results = await asyncio.gather(
            *(
                s.claim_run(ref, status="Failed", end_time=None, holder=f"replica-{i}")
                for i, s in enumerate(replicas)
            )
        )
        assert results.count(True) == 1, results
        winner = results.index(True)
        record = await replicas[0].run_record(ref)
        assert record is not None and record.holder == f"replica-{winner}"


async def test_twenty_replicas_take_one_slack_delivery_exactly_once(replicas: list[SqlStore]) -> None:
    """Slack's retry of an event reaching every replica at once (or a replay): one of them works it."""
    for round_ in range(3):
        results = await asyncio.gather(*(s.claim_delivery(f"event:Ev{round_}") for s in replicas))
        assert results.count(True) == 1, results


async def test_twenty_claims_on_one_store(store: SqlStore) -> None:
    results = await asyncio.gather(
        *(store.claim_run(REF, status="Failed", end_time=None, holder=f"task-{i}") for i in range(20))
    )
    assert results.count(True) == 1


async def test_two_holders_race_for_a_lease(replicas: list[SqlStore]) -> None:
    a, b = replicas[0], replicas[1]
    for round_ in range(10):
        name = f"sweep:account-{round_}"
        results = await asyncio.gather(
            a.acquire_lease(name, holder="a", ttl_seconds=60),
            b.acquire_lease(name, holder="b", ttl_seconds=60),
        )
        assert sorted(results) == [False, True], results


async def test_many_holders_race_for_an_expired_lease(replicas: list[SqlStore]) -> None:
    assert await replicas[0].acquire_lease("sweep:x", holder="dead", ttl_seconds=0.2)
    await asyncio.sleep(0.4)
    results = await asyncio.gather(
        *(s.acquire_lease("sweep:x", holder=f"r{i}", ttl_seconds=60) for i, s in enumerate(replicas))
    )
    assert results.count(True) == 1, results


async def test_two_contenders_reclaim_a_stale_claim(replicas: list[SqlStore]) -> None:
    for round_ in range(5):
        ref = RunRef(REF.account, REF.source, REF.scan, f"stale-{round_}")
        assert await replicas[0].claim_run(ref, status="Failed", end_time=None, holder="dead")
        stale_before = await _stale_soon()
        results = await asyncio.gather(
            replicas[1].reclaim(ref, holder="b", stale_before=stale_before),
            replicas[2].reclaim(ref, holder="c", stale_before=stale_before),
        )
        assert sorted(results) == [False, True], results
        record = await replicas[0].run_record(ref)
        assert record is not None and record.holder == ("b" if results[0] else "c")


async def test_claim_then_many_reclaims(replicas: list[SqlStore]) -> None:
    assert await replicas[0].claim_run(REF, status="Failed", end_time=None, holder="dead")
    stale_before = await _stale_soon()
    results = await asyncio.gather(
        *(s.reclaim(REF, holder=f"r{i}", stale_before=stale_before) for i, s in enumerate(replicas))
    )
    assert results.count(True) == 1


async def test_postgres_leases_follow_the_database_clock(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replica whose clock runs an hour fast does not see another's lease as expired: the server
    stamps and compares lease times (`now()`), not the replicas."""
    a, b = await SqlStore.open(postgres_url), await SqlStore.open(postgres_url)
    try:
        assert await a.acquire_lease("sweep:x", holder="a", ttl_seconds=60)
        monkeypatch.setattr(sql, "_now", lambda: datetime.now(UTC) + timedelta(hours=1))
        assert await b.acquire_lease("sweep:x", holder="b", ttl_seconds=60) is False
        assert await a.acquire_lease("sweep:x", holder="a", ttl_seconds=60) is True
    finally:
        await a.close()
        await b.close()
