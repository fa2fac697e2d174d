"""The per-channel post records (`run_posts`, migration 3) on SQLite and PostgreSQL: a run's failure goes
to several channels, each recorded once (the first record wins, so a retry cannot move a post), and a
thread's sibling threads are found for the "recovered" replies."""

from __future__ import annotations

import asyncio

from bot.store import RunRef, SqlStore

A = RunRef("contoso-pv", "sales-adls", "weekly", "run-a")
B = RunRef("contoso-pv", "sales-adls", "weekly", "run-b")
OTHER = RunRef("contoso-pv", "hr-sql", "nightly", "run-c")


async def test_posts_are_recorded_once_per_channel(database_url: str) -> None:
    store = await SqlStore.open(database_url)
    try:
        for ref in (A, B, OTHER):
            assert await store.claim_run(ref, status="Failed", end_time=None, holder="h")
        await store.record_posts([A, B], channel="C0ONCALL", posted_in="C0ONCALL", message_ts="1.1")
        await store.record_posts(
            [A, A], channel="C0GONE", posted_in="C0ALERTS", message_ts="2.2", note="is_archived"
        )
        # a retry, or another replica, recording the same channel again: the first record stays
        await store.record_posts([A], channel="C0ONCALL", posted_in="C0ONCALL", message_ts="9.9")
        await store.record_posts(
            [OTHER], channel="C0NOWHERE", posted_in=None, message_ts=None, note="is_archived"
        )

        posts = {
            (p.ref.run_id, p.channel): (p.posted_in, p.message_ts, p.note)
            for p in await store.run_posts([A, B])
        }
        assert posts == {
            ("run-a", "C0ONCALL"): ("C0ONCALL", "1.1", None),
            ("run-b", "C0ONCALL"): ("C0ONCALL", "1.1", None),
            ("run-a", "C0GONE"): ("C0ALERTS", "2.2", "is_archived"),
        }
        [nowhere] = await store.run_posts([OTHER])
        assert (nowhere.posted_in, nowhere.message_ts) == (None, None)
        assert await store.run_posts([]) == []

        # the threads of the runs posted under on-call's parent: its own and the fallback one, each once
        siblings = await store.thread_posts("contoso-pv", "C0ONCALL", "1.1")
        assert sorted((p.ref.run_id, p.channel, p.posted_in, p.message_ts) for p in siblings) == [
            ("run-a", "C0GONE", "C0ALERTS", "2.2"),
            ("run-a", "C0ONCALL", "C0ONCALL", "1.1"),
            ("run-b", "C0ONCALL", "C0ONCALL", "1.1"),
        ]
        assert await store.thread_posts("contoso-pv", "C0ONCALL", "0.0") == []
        assert await store.thread_posts("other-pv", "C0ONCALL", "1.1") == []
    finally:
        await store.close()


async def test_concurrent_records_of_one_channel_keep_one(database_url: str) -> None:
    stores = [await SqlStore.open(database_url) for _ in range(4)]
    try:
        await stores[0].claim_run(A, status="Failed", end_time=None, holder="h")
        await asyncio.gather(
            *(
                s.record_posts([A], channel="C0ONCALL", posted_in="C0ONCALL", message_ts=f"{i}.0")
                for i, s in enumerate(stores)
            )
        )
        [post] = await stores[0].run_posts([A])
        assert post.channel == "C0ONCALL" and post.message_ts in {"0.0", "1.0", "2.0", "3.0"}
    finally:
        for s in stores:
            await s.close()
