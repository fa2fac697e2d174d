"""The one path every failed run takes, whether a sweep or the webhook found it: claim it in the store
(the unique key makes it exactly once across replicas and both sides), diagnose it, group the diagnosed
failures by root cause (handlers.watch.storms), post one parent per cause in each channel the failure goes
to (its routed channel and every channel watching it, handlers.watch.routing), record each channel's post,
and mark the run posted once every channel has it.

Exactly once per channel: the run is claimed once, and each channel's post is recorded
(`Store.record_posts`) as soon as it exists. A claim taken over after a crash or a failed post is posted
only where it is still missing, after looking for the parent there first (handlers.watch.sweep).

A channel that refuses the post itself (archived, not found, the bot removed and unable to join) gets it
in the fallback channel (the alert channel, else the routed one) with why: in a parent of its own there,
or, when the fallback channel has the same failure already, in a note in that parent's thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from checks.classify import classify_run
from checks.gateways.api import Json
from checks.times import parse_time
from handlers.diagnosis import DiagnosisRunner
from handlers.ports import RunPost, RunRef, Store
from handlers.watch.config import Clock, WatchConfig, WatchMetrics
from handlers.watch.model import (
    ChannelRefused,
    Failure,
    Publisher,
    ScanKey,
    ThreadRef,
    Undelivered,
    run_status,
)
from handlers.watch.reads import ScanReader
from handlers.watch.routing import Place, Router
from handlers.watch.storms import Cause, cause_of

log = logging.getLogger(__name__)

Posted = dict[ScanKey, ThreadRef]
"""The parent each scan's failures were posted under (in its first channel that has it)."""

Where = ThreadRef | None
"""Where a channel's post of a failure is: a parent (in that channel, or in the fallback channel), or
None when it was delivered nowhere (the channel and its fallback both refused it)."""


def where_of(post: RunPost) -> Where:
    if post.posted_in and post.message_ts:
        return ThreadRef(post.posted_in, post.message_ts)
    return None


@dataclass
class Candidate:
    """A scan's claimed failed runs, waiting for their diagnosis and their posts."""

    refs: list[RunRef]
    failure: Failure
    targets: list[str]  # every channel the failure goes to, the routed one first
    pending: list[str]  # the channels to post in now; the others are settled or in progress
    settled: dict[str, Where] = field(default_factory=dict)  # channel → where its post is
    seen: list[Json] = field(default_factory=list)  # the scan's runs as read (webhook: for a new cursor)
    since: datetime | None = None  # taken over from a stopped process: its posts are looked for from then
    fingerprint: str | None = None
    _diagnosed: Failure | None = None

    @property
    def key(self) -> ScanKey:
        return self.failure.key

    def add(self, refs: list[RunRef]) -> None:
        """More claimed runs of the same scan: one post covers them all."""
        self.refs.extend(refs)
        self.failure = replace(self.failure, run_ids=tuple(r.run_id for r in self.refs))

    @property
    def done(self) -> bool:
        """Every target channel has its post (or was found unable to take it)."""
        return all(channel in self.settled for channel in self.targets)

    def primary(self) -> ThreadRef | None:
        """The first target's parent (or the first that has one): where "recovered" goes."""
        for channel in [*self.targets, *self.settled]:
            where = self.settled.get(channel)
            if where is not None:
                return where
        return None


@dataclass
class _Group:
    """The failures of one root cause for one channel: one parent."""

    cause: Cause
    members: list[tuple[Candidate, Failure]] = field(default_factory=list)

    @property
    def candidates(self) -> list[Candidate]:
        return [c for c, _ in self.members]

    @property
    def failures(self) -> list[Failure]:
        return [f for _, f in self.members]


class AccountLocks:
    """Sweep and webhook intake of one account take turns in this process (cursors stay coherent)."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def __call__(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name.lower(), asyncio.Lock())


class Pipeline:
    """claim → diagnose → group → post in each channel → record."""

    def __init__(
        self,
        *,
        config: WatchConfig,
        store: Store,
        runner: DiagnosisRunner,
        publisher: Publisher,
        metrics: WatchMetrics,
        router: Router,
    ) -> None:
        self._config = config
        self._store = store
        self._runner = runner
        self._publisher = publisher
        self._metrics = metrics
        self._router = router

    def is_news(self, run: Json, now: datetime) -> bool:
        """A run in a watched status that ended within the lookback."""
        ended = parse_time(run.get("endTime"))
        return (
            run_status(run) in self._config.statuses
            and ended is not None
            and ended >= now - self._config.lookback
        )

    async def claim(
        self,
        name: str,
        source: str,
        collection: str | None,
        scan: str,
        runs: list[Json],
        channels: Sequence[str],
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
        return Candidate(refs, failure, list(channels), list(channels))

    async def diagnosed(self, candidate: Candidate) -> Failure:
        """The candidate's failure with its report, or with why there is none (diagnosed once)."""
        if candidate._diagnosed is None:
            failure = candidate.failure
            try:
                report = await self._runner.run(failure.source, account=failure.account, scan=failure.scan)
            except Exception as error:
                log.warning("watcher: diagnosis of %s/%s failed: %s", failure.source, failure.scan, error)
                candidate._diagnosed = replace(failure, diagnosis_error=self._runner.reason(error))
            else:
                candidate._diagnosed = replace(failure, report=report)
        return replace(candidate._diagnosed, run_ids=candidate.failure.run_ids)

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

    async def settle(
        self, candidates: Sequence[Candidate], channel: str, where: Where, note: str | None = None
    ) -> None:
        """Record that the candidates' runs are posted for `channel` (at `where`), in one statement."""
        refs = [ref for candidate in candidates for ref in candidate.refs]
        await self._store.record_posts(
            refs,
            channel=channel,
            posted_in=where.channel if where else None,
            message_ts=where.ts if where else None,
            note=note,
        )
        for candidate in candidates:
            candidate.settled[channel] = where

    async def deliver(self, candidates: list[Candidate], now: datetime) -> tuple[Posted, int]:
        """Diagnose, group by (channel, root cause), post each group, fall back where a channel refuses,
        record the posts; mark the runs posted whose every channel is settled.

        Returns the parent per scan, and the number of parents posted. A group whose parent cannot be
        posted (Slack failing) stays claimed: a later sweep takes it over once stale and posts it where it
        is still missing.
        """
        if not candidates:
            return {}, 0
        todo = [c for c in candidates if c.pending]
        diagnosed = await asyncio.gather(*(self.diagnosed(c) for c in todo))
        by_channel: dict[str, dict[str, _Group]] = {}
        for candidate, failure in zip(todo, diagnosed, strict=True):
            cause = self.cause(failure)
            candidate.fingerprint = cause.fingerprint
            for channel in candidate.pending:
                groups = by_channel.setdefault(channel, {})
                groups.setdefault(cause.fingerprint, _Group(cause)).members.append((candidate, failure))
        results = await asyncio.gather(
            *(
                self._post_channel(channel, list(groups.values()), now)
                for channel, groups in by_channel.items()
            )
        )
        posts = sum(count for count, _ in results)
        refused = [item for _, items in results for item in items]
        if refused:
            posts += await self._fall_back(refused, now)
        posted: Posted = {}
        for candidate in candidates:
            candidate.pending = [c for c in candidate.pending if c not in candidate.settled]
            primary = candidate.primary()
            if primary is not None:
                posted[candidate.key] = primary
            if candidate.done:
                await self._mark_posted(candidate, primary)
        return posted, posts

    async def _mark_posted(self, candidate: Candidate, primary: ThreadRef | None) -> None:
        if primary is None:
            failure = candidate.failure
            log.error(
                "watcher: the failure of %s/%s (run %s) could not be posted in any channel (%s)",
                failure.source,
                failure.scan,
                ", ".join(failure.run_ids),
                ", ".join(candidate.targets),
            )
            primary = ThreadRef(candidate.targets[0] if candidate.targets else "", "")
        await self._store.mark_posted(
            candidate.refs, channel=primary.channel, message_ts=primary.ts, fingerprint=candidate.fingerprint
        )

    async def _post_channel(
        self, channel: str, groups: list[_Group], now: datetime
    ) -> tuple[int, list[tuple[Undelivered, _Group]]]:
        """Post the channel's groups in turn; the groups it refuses (once it refused one, all of them)."""
        posts = 0
        refused: list[tuple[Undelivered, _Group]] = []
        refusal: Undelivered | None = None
        for group in groups:
            if refusal is not None:
                refused.append((refusal, group))
                continue
            try:
                ts = await self._publisher.post_group(channel, group.failures, group.cause.finding, now)
            except ChannelRefused as error:
                refusal = Undelivered(channel, error.reason)
                log.warning(
                    "watcher: %s refuses the bot's posts (%s): its failures go to the fallback channel",
                    channel,
                    error.reason,
                )
                refused.append((refusal, group))
                continue
            except Exception:
                log.exception("watcher: posting %d failure(s) to %s failed", len(group.members), channel)
                continue
            await self.settle(group.candidates, channel, ThreadRef(channel, ts))
            self._metrics.watch_post("storm" if len(group.members) > 1 else "failure")
            posts += 1
        return posts, refused

    async def _fall_back(self, refused: list[tuple[Undelivered, _Group]], now: datetime) -> int:
        """The failures channels refused, posted in their fallback channel with why; a note in the
        fallback channel's parent where it has the failure already. Returns the parents posted."""
        plans: dict[tuple[str, str, tuple[Undelivered, ...]], _Group] = {}
        wanted: dict[int, list[Undelivered]] = {}  # id(candidate) → the refusals its fallback covers
        notes: dict[ThreadRef, list[Undelivered]] = {}
        fallback_of = {
            id(c): self._router.fallback(Place(f.account, f.collection, f.source))
            for _, group in refused
            for c, f in group.members
        }
        # a fallback channel refusing its own posts first: the others then know it takes nothing
        ordered = sorted(refused, key=lambda item: item[0].channel not in fallback_of.values())
        for undelivered, group in ordered:
            for candidate, failure in group.members:
                target = fallback_of[id(candidate)]
                if target is None or target == undelivered.channel or target in candidate.settled:
                    there = candidate.settled.get(target) if target else None
                    if there is None:
                        log.error(
                            "watcher: %s/%s not delivered to %s (%s), and no other channel takes it",
                            failure.source,
                            failure.scan,
                            undelivered.channel,
                            undelivered.reason,
                        )
                    else:
                        notes.setdefault(there, []).append(undelivered)
                    await self.settle([candidate], undelivered.channel, there, undelivered.reason)
                    continue
                if target in candidate.targets:
                    continue  # its own post there failed just now: both are retried with the claim
                wanted.setdefault(id(candidate), []).append(undelivered)
        for undelivered, group in ordered:
            for candidate, failure in group.members:
                refusals = wanted.get(id(candidate))
                target = fallback_of[id(candidate)]
                if not refusals or undelivered != refusals[0] or target is None:
                    continue  # once per candidate, under its first refusal's cause
                key = (target, group.cause.fingerprint, tuple(dict.fromkeys(refusals)))
                plans.setdefault(key, _Group(group.cause)).members.append((candidate, failure))
        posts = 0
        for (target, _, channels_refused), group in plans.items():
            members = await self._not_found_in(target, channels_refused, group)
            if not members:
                continue
            try:
                ts = await self._publisher.post_group(
                    target, [f for _, f in members], group.cause.finding, now, undelivered=channels_refused
                )
            except ChannelRefused as error:
                log.error(
                    "watcher: the fallback channel %s refuses the bot's posts too (%s): %d failure(s) not "
                    "delivered to %s",
                    target,
                    error.reason,
                    len(members),
                    ", ".join(u.channel for u in channels_refused),
                )
                for undelivered in channels_refused:
                    note = f"{undelivered.reason}; fallback {target}: {error.reason}"
                    await self.settle([c for c, _ in members], undelivered.channel, None, note)
                continue
            except Exception:
                log.exception(
                    "watcher: the fallback post of %d failure(s) to %s failed", len(members), target
                )
                continue
            for undelivered in channels_refused:
                await self.settle(
                    [c for c, _ in members], undelivered.channel, ThreadRef(target, ts), undelivered.reason
                )
            self._metrics.watch_post("fallback")
            posts += 1
        for thread, noted in notes.items():
            try:
                await self._publisher.post_note(thread.channel, thread.ts, list(dict.fromkeys(noted)))
            except Exception:
                log.exception("watcher: the note under %s in %s failed", thread.ts, thread.channel)
        return posts

    async def _not_found_in(
        self, target: str, refusals: tuple[Undelivered, ...], group: _Group
    ) -> list[tuple[Candidate, Failure]]:
        """The members whose fallback parent is not in `target` yet. Only runs taken over from a stopped
        process are looked for (it may have posted the fallback parent just before it stopped)."""
        members: list[tuple[Candidate, Failure]] = []
        for candidate, failure in group.members:
            if candidate.since is None:
                members.append((candidate, failure))
                continue
            run_ids = [r.run_id for r in candidate.refs]
            missing = []
            for undelivered in refusals:
                found = await self._publisher.find_posted(
                    target, run_ids, candidate.since, meant_for=undelivered.channel
                )
                parent = next((found[r.lower()] for r in run_ids if r.lower() in found), None)
                if parent is None:
                    missing.append(undelivered)
                else:
                    where = ThreadRef(target, parent.ts)
                    await self.settle([candidate], undelivered.channel, where, undelivered.reason)
            if missing:
                members.append((candidate, failure))
        return members


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
