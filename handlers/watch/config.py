"""The watcher's settings and the counters it feeds; both handed in by the composition root."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from checks.model import Report
from handlers.ports import DiagnosisMetrics


def default_holder() -> str:
    """Who holds claims and leases: unique per process, readable in the database."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def utc_now() -> datetime:
    return datetime.now(UTC)


Clock = Callable[[], datetime]


@dataclass(frozen=True)
class WatchConfig:
    accounts: tuple[str, ...]  # as configured (names or ARM ids); the first is the webhook's default
    interval_seconds: float = 300.0
    statuses: frozenset[str] = frozenset({"failed"})  # lower case
    lookback: timedelta = timedelta(days=1)
    concurrency: int = 8
    deadline_seconds: float = 60.0
    holder: str = field(default_factory=default_holder)

    @property
    def stale_after(self) -> timedelta:
        """A claim not posted by then was left by a dead process."""
        return timedelta(seconds=2 * self.deadline_seconds)


class WatchMetrics(DiagnosisMetrics, Protocol):
    def sweep_done(self, account: str, ok: bool) -> None: ...

    def watch_post(self, kind: str) -> None:
        """kind: failure, storm, recovery."""
        ...


class NoMetrics:
    def sweep_done(self, account: str, ok: bool) -> None:
        pass

    def watch_post(self, kind: str) -> None:
        pass

    def diagnosis(self, report: Report) -> None:
        pass

    def diagnosis_failed(self) -> None:
        pass
