"""The one path every failed run takes, whether a sweep or the webhook found it: claim it in the store
(the unique key makes it exactly once across replicas and both sides), diagnose it, group the diagnosed
failures by root cause (handlers.watch.storms), post one parent per cause and channel, record the post.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from checks.classify import classify_run
from checks.gateways.api import Json
from checks.times import parse_time
from handlers.diagnosis import DiagnosisRunner
from handlers.ports import RunRef, Store
from handlers.watch.config import Clock, WatchConfig, WatchMetrics
from handlers.watch.model import Failure, Publisher, ScanKey, ThreadRef, run_status
from handlers.watch.reads import ScanReader
from handlers.watch.routing import Router
from handlers.watch.storms import Cause, cause_of

log = logging.getLogger(__name__)

Posted = dict[ScanKey, ThreadRef]
"""The parent each scan's failures were posted under."""


@dataclass
class Candidate:
    """A scan's claimed failed runs, waiting for their diagnosis and post."""

    refs: list[RunRef]
    failure: Failure
    channel: str
    seen: list[Json] = field(default_factory=list)  # the scan's runs as read (webhook: for a new cursor)

    @property
    def key(self) -> ScanKey:
        return self.failure.key

    def add(self, refs: list[RunRef]) -> None:
        """More claimed runs of the same scan: one post covers them all."""
        self.refs.extend(refs)
        self.failure = replace(self.failure, run_ids=tuple(r.run_id for r in self.refs))


class AccountLocks:
    """Sweep and webhook intake of one account take turns in this process (cursors stay coherent)."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def __call__(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name.lower(), asyncio.Lock())


class Pipeline:
    """claim → diagnose → group → post."""

    def __init__(
        self,
        *,
        config: WatchConfig,
        store: Store,
        runner: DiagnosisRunner,
        publisher: Publisher,
        metrics: WatchMetrics,
    ) -> None:
        self._config = config
        self._store = store
        self._runner = runner
        self._publisher = publisher
        self._metrics = metrics

    def is_news(self, run: Json, now: datetime) -> bool:
        """A run in a watched status that ended within the lookback."""
        ended = parse_time(run.get("endTime"))
        return (
            run_status(run) in self._config.statuses
            and ended is not None
            and ended >= now - self._config.lookback
        )

    async def claim(
        self, name: str, source: str, collection: str | None, scan: str, runs: list[Json], channel: str
    ) -> Candidate | None:
        """Claim each run (one insert each; another replica or the other side may win some); None when
        this process won none."""
        claimed: list[tuple[RunRef, Json]] = []
        for run in runs:
            ref = RunRef(name, source, scan, str(run["id"]))
            ended = parse_time(run.get("endTime"))
            status = str(run.get("status") or "")
            if await self._store.claim_run(ref, status=status, end_time=ended, holder=self._config.holder):
                claimed.append((ref, run))
        if not claimed:
            return None
        refs = [ref for ref, _ in claimed]
        failure = Failure(name, source, collection, scan, claimed[0][1], tuple(r.run_id for r in refs))
        return Candidate(refs, failure, channel)

    async def diagnosed(self, candidate: Candidate) -> Failure:
        """The candidate's failure with its report, or with why there is none."""
        failure = candidate.failure
        try:
            report = await self._runner.run(failure.source, account=failure.account, scan=failure.scan)
        except Exception as error:
            log.warning("watcher: diagnosis of %s/%s failed: %s", failure.source, failure.scan, error)
            return replace(failure, diagnosis_error=self._runner.reason(error))
        return replace(failure, report=report)

    @staticmethod
    def cause(failure: Failure) -> Cause:
        """The failure's root cause (its storm fingerprint)."""
        classified = classify_run(failure.run)
        return cause_of(
            failure.report,
            run_key="/".join((failure.account, failure.source, failure.scan, *failure.run_ids)),
            scan=failure.scan,
            section=classified.section if classified else None,
        )

    async def deliver(self, candidates: list[Candidate], now: datetime) -> tuple[Posted, int]:
        """Diagnose, group by (channel, root cause), post each group, record the posts.

        Returns the parent per scan posted, and the number of parents. A group whose parent cannot be
        posted stays claimed: a later sweep takes it over once stale.
        """
        if not candidates:
            return {}, 0
        diagnosed = await asyncio.gather(*(self.diagnosed(c) for c in candidates))
        groups: dict[tuple[str, str], tuple[Cause, list[tuple[Candidate, Failure]]]] = {}
        for candidate, failure in zip(candidates, diagnosed, strict=True):
            cause = self.cause(failure)
            groups.setdefault((candidate.channel, cause.fingerprint), (cause, []))[1].append(
                (candidate, failure)
            )
        by_channel: dict[str, list[tuple[Cause, list[tuple[Candidate, Failure]]]]] = {}
        for (channel, _), group in groups.items():
            by_channel.setdefault(channel, []).append(group)
        results = await asyncio.gather(
            *(
                self._post_channel(channel, channel_groups, now)
                for channel, channel_groups in by_channel.items()
            )
        )
        posted: Posted = {}
        posts = 0
        for threads, count in results:
            posted.update(threads)
            posts += count
        return posted, posts

    async def _post_channel(
        self, channel: str, groups: list[tuple[Cause, list[tuple[Candidate, Failure]]]], now: datetime
    ) -> tuple[Posted, int]:
        posted: Posted = {}
        posts = 0
        for cause, members in groups:
            failures = [f for _, f in members]
            try:
                ts = await self._publisher.post_group(channel, failures, cause.finding, now)
            except Exception:
                log.exception("watcher: posting %d failure(s) to %s failed", len(failures), channel)
                continue
            refs = [ref for candidate, _ in members for ref in candidate.refs]
            await self._store.mark_posted(refs, channel=channel, message_ts=ts, fingerprint=cause.fingerprint)
            self._metrics.watch_post("storm" if len(members) > 1 else "failure")
            posts += 1
            for candidate, _ in members:
                posted[candidate.key] = ThreadRef(channel, ts)
        return posted, posts


@dataclass(frozen=True)
class Sides:
    """What both sides that find runs (the sweep and the webhook intake) work with."""

    config: WatchConfig
    store: Store
    purview: Callable[[str], ScanReader]
    pipeline: Pipeline
    router: Router
    locks: AccountLocks
    clock: Clock


class Side:
    """The base of the two sides that find runs: the parts both work with, by name."""

    def __init__(self, sides: Sides) -> None:
        self._config = sides.config
        self._store = sides.store
        self._purview = sides.purview
        self._pipeline = sides.pipeline
        self._router = sides.router
        self._locks = sides.locks
        self._clock = sides.clock
