"""The ports the composition root (`bot/`) fills: the diagnosis service, the durable store, the metrics.

Handlers depend on these protocols only, never on `bot/`, so the direction stays bot → handlers → checks.

The store: exactly-once posting rests on the database, not on timing. A run is *claimed* by inserting its
row (a unique constraint on account/source/scan/run id decides between replicas, the watcher and the
webhook; never check-then-insert), and marked *posted* once its Slack message exists. A claim whose holder
died before posting is taken over atomically (`reclaim`) after it went stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from checks.gateways.api import Json
from checks.model import Report


@dataclass(frozen=True)
class ScanRuns:
    """One scan of a data source with its latest runs, newest first."""

    scan: Json
    runs: list[Json]


class DiagnosisService(Protocol):
    @property
    def accounts(self) -> list[str]:
        """The configured Purview accounts; the first is the default."""
        ...

    async def diagnose(
        self,
        source: str,
        *,
        account: str | None = None,
        scan: str | None = None,
        requester_email: str | None = None,
    ) -> Report:
        """A full report; raises checks.diagnose.NameNotFoundError for names Purview does not have."""
        ...

    async def data_sources(self, account: str | None = None) -> list[Json]: ...

    async def resolve(self, source: str, *, account: str | None = None, scan: str | None = None) -> str:
        """The source's name as Purview spells it, the scan (when given) checked to exist; raises
        NameNotFoundError with the closest names. One GET when the name is right."""
        ...

    async def scan_runs(self, source: str, account: str | None = None) -> list[ScanRuns]:
        """Raises NameNotFoundError for an unknown source."""
        ...


class DiagnosisMetrics(Protocol):
    """What every diagnosis feeds (implemented by `bot.metrics.Metrics`)."""

    def diagnosis(self, report: Report) -> None: ...

    def diagnosis_failed(self) -> None: ...


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
class RunPost:
    """Where a claimed run was posted for one of its target channels (a failure goes to the routed channel
    and to each channel watching it: one parent per channel, recorded per channel so that a retry or a
    restart posts only where it is still missing).

    `posted_in` is `channel` itself, or the fallback channel when `channel` refused the post for a
    channel-level reason (`note` says which); None with `message_ts` None: delivered nowhere (the channel
    and its fallback both refused), recorded so that it is not retried forever.
    """

    ref: RunRef
    channel: str
    posted_in: str | None
    message_ts: str | None
    note: str | None = None


class StoreUnavailable(Exception):
    """The database cannot be reached just now (not opened yet, or gone): the caller degrades (slash
    commands answer without it, the webhook answers 503, the watcher waits) instead of failing."""


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


@dataclass(frozen=True)
class Mute:
    """A source whose automatic failure posts are held back until `until` (recorded, not posted)."""

    account: str
    source: str
    until: datetime
    muted_by: str | None = None


@dataclass(frozen=True)
class StoredReport:
    """A source's last report as stored (report JSON), and when it was saved."""

    account: str
    source: str
    report: dict[str, Any]
    updated_at: datetime


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

    async def record_posts(
        self,
        refs: Sequence[RunRef],
        *,
        channel: str,
        posted_in: str | None,
        message_ts: str | None,
        note: str | None = None,
    ) -> None:
        """Record that `refs` were posted for `channel` (in `posted_in`, under `message_ts`); a channel
        already recorded for a run keeps its first record."""
        ...

    async def run_posts(self, refs: Sequence[RunRef]) -> list[RunPost]:
        """The per-channel posts recorded for these runs."""
        ...

    async def thread_posts(self, account: str, posted_in: str, message_ts: str) -> list[RunPost]:
        """Every per-channel post of the runs that have a post under `message_ts` in `posted_in` (the
        other channels' threads of the same failures, for their "recovered" replies)."""
        ...

    # cursors ------------------------------------------------------------------------------------
    async def cursors(self, account: str) -> dict[tuple[str, str], ScanCursor]:
        """Every scan cursor of the account, keyed by (source, scan): one query per sweep."""
        ...

    async def save_cursor(self, cursor: ScanCursor) -> None: ...

    # reports (for "what changed") -----------------------------------------------------------------
    async def save_report(self, account: str, source: str, report: dict[str, Any]) -> None: ...

    async def last_report(self, account: str, source: str) -> dict[str, Any] | None: ...

    async def last_reports(self, account: str) -> list[StoredReport]:
        """Every source's last report in the account (App Home: no Azure call on open)."""
        ...

    # mutes ----------------------------------------------------------------------------------------
    async def mute(self, mute: Mute) -> None:
        """Mute the source until `mute.until` (a mute of the same source is replaced)."""
        ...

    async def unmute(self, account: str, source: str) -> bool:
        """True iff the source had a mute row (expired or not)."""
        ...

    async def mutes(self, account: str) -> list[Mute]:
        """The account's mutes, expired ones included (the caller compares with its clock)."""
        ...

    # watches --------------------------------------------------------------------------------------
    async def watches(self) -> list[Watch]: ...

    async def add_watch(self, watch: Watch) -> None: ...

    async def remove_watch(self, watch: Watch) -> None: ...

    # leases ---------------------------------------------------------------------------------------
    async def acquire_lease(self, name: str, *, holder: str, ttl_seconds: float) -> bool:
        """Take the lease if free or expired, or renew it if `holder` has it; atomic. True iff held."""
        ...

    async def release_lease(self, name: str, *, holder: str) -> None: ...

    # Slack deliveries (retries and replays are worked once) ---------------------------------------
    async def claim_delivery(self, key: str) -> bool:
        """Record a Slack delivery's key (event id, interaction trigger); True iff this call recorded it
        (one insert on a unique key decides between replicas and restarts)."""
        ...

    async def prune_deliveries(self, before: datetime) -> int:
        """Forget the deliveries recorded before `before`; returns how many."""
        ...

    async def close(self) -> None: ...
