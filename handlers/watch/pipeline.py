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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from checks.classify import classify_run
from checks.gateways.api import Json
from checks.model import Report
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
    muted: str | None = None  # why it is recorded and not posted (its source is muted until …)
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
                await self._remember(report)
        return replace(candidate._diagnosed, run_ids=candidate.failure.run_ids)

    async def _remember(self, report: Report) -> None:
        """The diagnosis saved as the source's last report (App Home, "since the last check"); a store
        that fails here is logged: the post matters more."""
        try:
            await self._store.save_report(report.account, report.source.name, report.to_json())
        except Exception as error:
            log.warning("watcher: the report of %s could not be saved: %s", report.source.name, error)

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

    async def deliver(
        self,
        candidates: list[Candidate],
        now: datetime,
        open_threads: Mapping[ScanKey, ThreadRef] | None = None,
    ) -> tuple[Posted, int]:
        """Diagnose, group by (channel, root cause), post each group, fall back where a channel refuses,
        record the posts; mark the runs posted whose every channel is settled.

        One thread per failing scan: a scan with an open thread (`open_threads`: the cursor's, its
        first channel's) gets its new failures as a reply in each channel's thread of it, and the parent
        edited, not a new parent. A muted source's failures are recorded, not posted.

        Returns the parent per scan, and the number of messages posted (parents and repeats). A group
        whose parent cannot be posted (Slack failing) stays claimed: a later sweep takes it over once
        stale and posts it where it is still missing.
        """
        if not candidates:
            return {}, 0
        todo = [c for c in candidates if c.pending]
        await self._hold_muted(todo, now)
        todo = [c for c in todo if c.muted is None]
        diagnosed = await asyncio.gather(*(self.diagnosed(c) for c in todo))
        by_channel: dict[str, dict[str, _Group]] = {}
        # one reply per distinct thread: channels that fell back to the same thread share it
        repeats: dict[tuple[int, ThreadRef], tuple[list[tuple[str, RunPost]], Candidate, Failure, Cause]] = {}
        for candidate, failure in zip(todo, diagnosed, strict=True):
            cause = self.cause(failure)
            candidate.fingerprint = cause.fingerprint
            threads = await self.threads_of(candidate, (open_threads or {}).get(candidate.key))
            for channel in candidate.pending:
                post = threads.get(channel)
                where = where_of(post) if post is not None else None
                if post is not None and where is not None:
                    key = (id(candidate), where)
                    repeats.setdefault(key, ([], candidate, failure, cause))[0].append((channel, post))
                    continue
                groups = by_channel.setdefault(channel, {})
                groups.setdefault(cause.fingerprint, _Group(cause)).members.append((candidate, failure))
        repeated = 0
        for (_, where), (channels, candidate, failure, cause) in repeats.items():
            if await self._repeat(where, channels, candidate, failure, cause, now):
                repeated += 1
                continue
            for channel, _post in channels:  # the thread takes no reply (gone, or refused): a new parent
                groups = by_channel.setdefault(channel, {})
                groups.setdefault(cause.fingerprint, _Group(cause)).members.append((candidate, failure))
        results = await asyncio.gather(
            *(
                self._post_channel(channel, list(groups.values()), now)
                for channel, groups in by_channel.items()
            )
        )
        posts = repeated + sum(count for count, _ in results)
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

    async def _hold_muted(self, candidates: list[Candidate], now: datetime) -> None:
        """Candidates whose source is muted (until after `now`): recorded as held in every pending
        channel, not posted (their runs are marked posted: a muted failure is not news later)."""
        if not candidates:
            return
        active: dict[tuple[str, str], datetime] = {}
        for account in {c.failure.account for c in candidates}:
            for mute in await self._store.mutes(account):
                if mute.until > now:
                    active[(account, mute.source.lower())] = mute.until
        for candidate in candidates:
            until = active.get((candidate.failure.account, candidate.failure.source.lower()))
            if until is None:
                continue
            candidate.muted = f"muted until {until.isoformat(timespec='minutes')}"
            for channel in candidate.pending:
                await self.settle([candidate], channel, None, candidate.muted)
            log.info(
                "watcher: %s/%s failed (run %s); %s, recorded and not posted",
                candidate.failure.source,
                candidate.failure.scan,
                ", ".join(candidate.failure.run_ids),
                candidate.muted,
            )

    async def threads_of(self, candidate: Candidate, thread: ThreadRef | None) -> dict[str, RunPost]:
        """The scan's open thread in each of its channels (the channel's own, or its fallback's): the
        posts recorded for the scan's runs under the open thread of its first channel."""
        if thread is None:
            return {}
        failure = candidate.failure
        posts = await self._store.thread_posts(failure.account, thread.channel, thread.ts)
        found: dict[str, RunPost] = {}
        for post in posts:
            same = (post.ref.source.lower(), post.ref.scan.lower()) == (
                failure.source.lower(),
                failure.scan.lower(),
            )
            if same and where_of(post) is not None:
                found.setdefault(post.channel, post)
        if not found and thread.channel in candidate.targets:  # a thread recorded before run_posts
            ref = candidate.refs[0]
            found[thread.channel] = RunPost(ref, thread.channel, thread.channel, thread.ts)
        return found

    async def _repeat(
        self,
        where: ThreadRef,
        channels: list[tuple[str, RunPost]],
        candidate: Candidate,
        failure: Failure,
        cause: Cause,
        now: datetime,
    ) -> bool:
        """A repeat failure as ONE reply in the scan's open thread `where`, the parent edited once, every
        channel whose post is that thread settled to it. False when the reply could not be posted (the
        caller posts a new parent instead)."""
        try:
            await self._publisher.post_repeat(where.channel, where.ts, [failure], cause.finding, now)
        except Exception:
            log.exception(
                "watcher: the repeat of %s/%s in the thread %s of %s failed: posting a new parent",
                failure.source,
                failure.scan,
                where.ts,
                where.channel,
            )
            return False
        for channel, post in channels:
            await self.settle([candidate], channel, where, post.note)
        self._metrics.watch_post("repeat")
        return True

    async def _mark_posted(self, candidate: Candidate, primary: ThreadRef | None) -> None:
        if primary is None and candidate.muted is not None:
            await self._store.mark_posted(candidate.refs, channel="", message_ts="", fingerprint=None)
            return
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
            first = group.failures[0]
            place = Place(first.account, first.collection, first.source)
            mention = self._router.mention(place) if channel == self._router.routed(place) else None
            try:
                ts = await self._publisher.post_group(
                    channel, group.failures, group.cause.finding, now, mention=mention
                )
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
