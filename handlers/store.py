"""The durable state the watcher and the webhook need, as a protocol (implemented in `bot/store/`).

Exactly-once posting rests on the database, not on timing: a run is *claimed* by inserting its row (a
unique constraint on account/source/scan/run id decides between replicas, the watcher and the webhook;
never check-then-insert), and marked *posted* once its Slack message exists. A claim whose holder died
before posting is taken over atomically (`reclaim`) after it went stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class RunRef:
    account: str
    source: str
    scan: str
    run_id: str


@dataclass(frozen=True)
class RunRecord:
    ref: RunRef
    status: str
    end_time: datetime | None
    state: str  # "claimed" | "posted"
    holder: str
    claimed_at: datetime
    fingerprint: str | None = None
    channel: str | None = None
    message_ts: str | None = None  # the parent message the run was posted under (a storm shares one)


@dataclass(frozen=True)
class ScanCursor:
    """Where polling of one scan stands: its newest run seen, and the open failure thread if any."""

    account: str
    source: str
    scan: str
    last_run_id: str | None = None
    last_status: str | None = None
    last_end_time: datetime | None = None
    failing_since: datetime | None = None
    thread_channel: str | None = None  # where "recovered at …" goes when the scan succeeds again
    thread_ts: str | None = None


@dataclass(frozen=True)
class Watch:
    """A channel that receives automatic posts for an account, optionally narrowed to a collection/source."""

    channel: str
    account: str
    collection: str | None = None
    source: str | None = None


class Store(Protocol):
    # runs ---------------------------------------------------------------------------------------
    async def claim_run(self, ref: RunRef, *, status: str, end_time: datetime | None, holder: str) -> bool:
        """Insert the run as claimed by `holder`; True iff this call inserted it (the unique key decides)."""
        ...

    async def reclaim(self, ref: RunRef, *, holder: str, stale_before: datetime) -> bool:
        """Take over a claim still unposted and claimed before `stale_before`; True iff taken (atomic)."""
        ...

    async def mark_posted(
        self, refs: Sequence[RunRef], *, channel: str, message_ts: str, fingerprint: str | None
    ) -> None: ...

    async def run_record(self, ref: RunRef) -> RunRecord | None: ...

    async def unposted(self, account: str) -> list[RunRecord]:
        """Claims of the account not marked posted (a process died between claim and post)."""
        ...

    # cursors ------------------------------------------------------------------------------------
    async def cursors(self, account: str) -> dict[tuple[str, str], ScanCursor]:
        """Every scan cursor of the account, keyed by (source, scan): one query per sweep."""
        ...

    async def save_cursor(self, cursor: ScanCursor) -> None: ...

    # reports (for "what changed") -----------------------------------------------------------------
    async def save_report(self, account: str, source: str, report: dict[str, Any]) -> None: ...

    async def last_report(self, account: str, source: str) -> dict[str, Any] | None: ...

    # watches --------------------------------------------------------------------------------------
    async def watches(self) -> list[Watch]: ...

    async def add_watch(self, watch: Watch) -> None: ...

    async def remove_watch(self, watch: Watch) -> None: ...

    # leases ---------------------------------------------------------------------------------------
    async def acquire_lease(self, name: str, *, holder: str, ttl_seconds: float) -> bool:
        """Take the lease if free or expired, or renew it if `holder` has it; atomic. True iff held."""
        ...

    async def release_lease(self, name: str, *, holder: str) -> None: ...

    async def close(self) -> None: ...
