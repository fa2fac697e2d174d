"""The one way every entry point runs a diagnosis: names resolved, a bounded number at once, a deadline
with a grace, identical checks in flight shared, metrics, and one line that says why it did not finish.

The slash command, mentions, the Re-run button and the scan-failure watcher all go through
`DiagnosisRunner`, so a hung diagnosis ends the same way everywhere and is counted once.

Slots and the deadline: at most N diagnoses run at once (`DiagnosisSlots`, shared by every runner over
the same service). A diagnosis first waits for a slot, *then* its deadline starts: time spent queued never
counts against it. A Slack handler takes its slot before its lookups (the source's name, the asker's
email) so that they run inside the same bound, and the runner inside that turn does not wait twice.

Coalescing: a `run` whose inputs (source, account, scan, requester) equal those of a diagnosis already in
flight waits for that diagnosis instead of starting another, and gives its slot back meanwhile; each
caller then answers its own asker with the same report.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from checks.accounts import AccountRef
from checks.diagnose import NameNotFoundError
from checks.model import Report
from handlers.ports import DiagnosisMetrics, DiagnosisService
from handlers.render.escape import code

log = logging.getLogger(__name__)

# beyond the diagnosis's own deadline (which makes late checks `unknown`): time to assemble the report
GRACE_SECONDS = 15.0


class Interrupted(Exception):
    """The diagnosis a caller was sharing was cancelled (the process is stopping)."""


def _retrieve(future: asyncio.Future[Report]) -> None:
    """Mark a shared diagnosis's error as seen (nobody may have joined it): no "never retrieved" log."""
    if not future.cancelled():
        future.exception()


class AccountError(ValueError):
    """The ACCOUNT argument is not one of the configured accounts; the message lists them (escaped)."""


def resolve_account(requested: str | None, accounts: Sequence[str]) -> str:
    """The configured entry for `requested` (its name or ARM id, any case); the default when None."""
    if not accounts:
        raise AccountError("No Purview account is configured (PURVIEW_ACCOUNTS).")
    found = AccountRef.resolve(requested, accounts)
    if found is None:
        names = ", ".join(code(AccountRef(a).name) for a in accounts)
        raise AccountError(f"No Purview account {code(requested or '')} here. The accounts are: {names}.")
    return found.configured


def reason_of(error: BaseException, deadline_seconds: float | None = None) -> str:
    """One line for the user: what broke (the traceback goes to the log)."""
    if isinstance(error, TimeoutError):
        if deadline_seconds is None:
            return "timed out"
        return f"no answer within {deadline_seconds + GRACE_SECONDS:.0f} s"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


@dataclass
class _Hold:
    """One task's claim on a slot; `held` goes False when the slot is given back before the turn ends."""

    held: bool = False
    on_release: list[Callable[[], None]] = field(default_factory=list)


class DiagnosisSlots:
    """At most `capacity` diagnoses at once (None: no bound), first come, first served.

    `turn()` waits for a slot and holds it for the rest of the block; it is re-entrant within one task
    (the context), so a handler's turn covers its lookups and the runner's diagnosis inside it without
    waiting twice. `give_back()` frees the slot early (the diagnosis is done, or another task's diagnosis
    answers this one). `on_release` is called once the slot is freed (the request leaves the queue).
    """

    def __init__(self, capacity: int | None) -> None:
        self.capacity = capacity
        self._semaphore = asyncio.Semaphore(capacity) if capacity else None
        self._hold: ContextVar[_Hold | None] = ContextVar(f"diagnosis-slot-{id(self)}", default=None)

    @asynccontextmanager
    async def turn(self, on_release: Callable[[], None] | None = None) -> AsyncIterator[None]:
        hold = self._hold.get()
        outer = hold is None
        if hold is None:
            hold = _Hold()
            token = self._hold.set(hold)
        if on_release is not None:
            hold.on_release.append(on_release)
        try:
            if not hold.held:
                await self._acquire(hold)
            yield
        finally:
            if outer:
                self._hold.reset(token)
                self._release(hold)

    def give_back(self) -> None:
        """Free the slot this task holds, if any, before its turn ends."""
        hold = self._hold.get()
        if hold is not None:
            self._release(hold)

    async def _acquire(self, hold: _Hold) -> None:
        if self._semaphore is not None:
            await self._semaphore.acquire()
        hold.held = True

    def _release(self, hold: _Hold) -> None:
        if hold.held:
            hold.held = False
            if self._semaphore is not None:
                self._semaphore.release()
        callbacks, hold.on_release = hold.on_release, []
        for callback in callbacks:
            callback()


@runtime_checkable
class BoundedService(Protocol):
    """A service that bounds its diagnoses (`bot.service.AzureDiagnosisService`): every runner over it
    shares its slots."""

    @property
    def slots(self) -> DiagnosisSlots: ...


@runtime_checkable
class SharedDiagnosisMetrics(Protocol):
    """Optional: counts the runs answered by a diagnosis already in flight (`bot.metrics.Metrics`)."""

    def diagnosis_shared(self) -> None: ...


_Key = tuple[str, str, str | None, str | None]


class DiagnosisRunner:
    """Diagnoses under `deadline_seconds` + GRACE_SECONDS from the moment each gets its slot, counted in
    `metrics`; identical diagnoses in flight are run once."""

    def __init__(
        self,
        service: DiagnosisService,
        metrics: DiagnosisMetrics,
        *,
        deadline_seconds: float,
        slots: DiagnosisSlots | None = None,
    ) -> None:
        self.service = service
        self._metrics = metrics
        self.deadline_seconds = deadline_seconds
        if slots is None:
            slots = service.slots if isinstance(service, BoundedService) else DiagnosisSlots(None)
        self.slots = slots
        self._in_flight: dict[_Key, asyncio.Future[Report]] = {}

    async def run(
        self, source: str, *, account: str, scan: str | None = None, requester_email: str | None = None
    ) -> Report:
        """The report, counted; raises NameNotFoundError, TimeoutError or whatever broke.

        Waits for a slot first (none when the caller's turn holds one); the deadline starts after. The
        slot is given back as soon as the diagnosis ends, so the caller's posting does not hold it.
        """
        key: _Key = (account, source, scan, requester_email)
        flight = self._in_flight.get(key)
        if flight is not None:
            if isinstance(self._metrics, SharedDiagnosisMetrics):
                self._metrics.diagnosis_shared()
            self.slots.give_back()  # this caller waits for another's diagnosis: its slot is free
            log.info("diagnosis of %s in %s already in flight: sharing it", source, AccountRef(account).name)
            return await asyncio.shield(flight)
        flight = asyncio.get_running_loop().create_future()
        flight.add_done_callback(_retrieve)
        self._in_flight[key] = flight
        try:
            report = await self._diagnose(source, account=account, scan=scan, requester_email=requester_email)
        except BaseException as error:
            flight.set_exception(error if isinstance(error, Exception) else Interrupted(str(error)))
            raise
        else:
            flight.set_result(report)
            return report
        finally:
            del self._in_flight[key]

    async def _diagnose(
        self, source: str, *, account: str, scan: str | None, requester_email: str | None
    ) -> Report:
        try:
            async with self.slots.turn():
                try:
                    async with asyncio.timeout(self.deadline_seconds + GRACE_SECONDS):  # starts now
                        report = await self.service.diagnose(
                            source, account=account, scan=scan, requester_email=requester_email
                        )
                finally:
                    self.slots.give_back()
        except NameNotFoundError:
            raise
        except Exception:
            self._metrics.diagnosis_failed()
            raise
        self._metrics.diagnosis(report)
        return report

    def reason(self, error: BaseException) -> str:
        """Why a `run` did not give a report, in one line."""
        return reason_of(error, self.deadline_seconds)

    async def resolve_source(self, source: str, account: str, scan: str | None = None) -> str:
        """The source's name as Purview spells it (and the scan, when given, checked to exist), before
        anything is posted in a channel.

        Raises NameNotFoundError with the closest names. When Purview cannot answer, the name is kept as
        typed and the diagnosis itself reports what it could not read.
        """
        try:
            return await self.service.resolve(source, account=account, scan=scan)
        except NameNotFoundError:
            raise
        except Exception as error:
            log.warning("checking the name %s in %s failed: %s", source, AccountRef(account).name, error)
            return source
