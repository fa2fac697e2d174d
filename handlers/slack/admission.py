"""What the bot takes on, decided in the ack with no I/O: a bound on the work in progress, and a rate
per user and per channel.

Every request that makes the bot read Azure (a check, `runs`, `list`, a mention's `check` or `recheck`,
the Re-run button) asks `Admission.admit` before its ack:

- per user and per channel, a token bucket in memory (per process): `per_minute` requests in a burst,
  refilled at `per_minute` a minute; past it the asker is told how long to wait;
- the work in progress (admitted and not finished: waiting for a diagnosis slot or running) is bounded;
  past it the asker is told "purview-bot is busy — try again in a minute".

A refusal posts nothing in the channel: a slash command hears it in its ack, a mention or a button
privately. An admitted request holds a `Ticket` until its work ends (`release`, idempotent).
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

BUSY = "purview-bot is busy — try again in a minute."
MAX_BUCKETS = 10_000  # users or channels tracked at once (full buckets are forgotten first)
LOG_EVERY_SECONDS = 10.0  # refusals are logged at most this often, with their count since


class AdmissionMetrics(Protocol):
    def refused(self, reason: str) -> None:
        """A request turned away: `busy`, `user_rate` or `channel_rate`."""
        ...


@dataclass(frozen=True)
class Refused:
    """Why a request was turned away (`reason`, for the metrics) and what the asker is told (escaped)."""

    reason: str
    text: str


class Ticket:
    """One admitted request's place in the work in progress; `release()` when its work ends."""

    def __init__(self, on_release: Callable[[], None] | None = None) -> None:
        self._on_release = on_release

    def release(self) -> None:
        if self._on_release is not None:
            on_release, self._on_release = self._on_release, None
            on_release()


class TokenBuckets:
    """One bucket per key holding up to `per_minute` tokens, refilled at `per_minute` a minute; a key
    without a bucket has a full one. `per_minute` 0 turns the limit off."""

    def __init__(
        self, per_minute: float, *, clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_BUCKETS
    ) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key → (tokens, at)

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.per_minute, now))
        return min(self.per_minute, tokens + (now - at) * self._rate)

    def wait(self, key: str) -> float:
        """Seconds until `key` may take a token (0: now)."""
        if self.per_minute <= 0:
            return 0.0
        missing = 1.0 - self._tokens(key, self._clock())
        return 0.0 if missing <= 0 else missing / self._rate

    def take(self, key: str) -> None:
        if self.per_minute <= 0:
            return
        now = self._clock()
        self._buckets[key] = (self._tokens(key, now) - 1.0, now)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self._max_keys:
            self._forget(now)

    def _forget(self, now: float) -> None:
        """Drop the buckets that have refilled (the same as none), then the least recently used."""
        for key in [k for k in self._buckets if self._tokens(k, now) >= self.per_minute]:
            del self._buckets[key]
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)


def _seconds(wait: float) -> str:
    return f"{max(1, math.ceil(wait))} s"


class Admission:
    """The ack-time decision: a `Ticket`, or `Refused` with what to tell the asker."""

    def __init__(
        self,
        *,
        max_in_progress: int,
        user_per_minute: float,
        channel_per_minute: float,
        metrics: AdmissionMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_in_progress = max_in_progress
        self._users = TokenBuckets(user_per_minute, clock=clock)
        self._channels = TokenBuckets(channel_per_minute, clock=clock)
        self._metrics = metrics
        self._clock = clock
        self.in_progress = 0
        self._refused_since_log = 0
        self._logged_at: float | None = None

    def admit(self, user: str | None, channel: str | None) -> Ticket | Refused:
        """Pure (no I/O): safe to call before the ack."""
        user_wait = self._users.wait(user) if user else 0.0
        if user_wait > 0:
            return self._refuse(
                "user_rate",
                f"You are asking purview-bot faster than it allows one person "
                f"({self._users.per_minute:g} a minute) — try again in {_seconds(user_wait)}.",
            )
        channel_wait = self._channels.wait(channel) if channel else 0.0
        if channel_wait > 0:
            return self._refuse(
                "channel_rate",
                f"purview-bot is answering this channel as fast as it allows "
                f"({self._channels.per_minute:g} a minute) — try again in {_seconds(channel_wait)}.",
            )
        if self.in_progress >= self.max_in_progress:
            return self._refuse("busy", BUSY)
        if user:
            self._users.take(user)
        if channel:
            self._channels.take(channel)
        self.in_progress += 1
        return Ticket(self._done)

    def _done(self) -> None:
        self.in_progress -= 1

    def _refuse(self, reason: str, text: str) -> Refused:
        self._metrics.refused(reason)
        self._refused_since_log += 1
        now = self._clock()
        if self._logged_at is None or now - self._logged_at >= LOG_EVERY_SECONDS:
            log.warning(
                "turning requests away (%d since the last such line; this one: %s); "
                "%d in progress, at most %d",
                self._refused_since_log,
                reason,
                self.in_progress,
                self.max_in_progress,
            )
            self._logged_at = now
            self._refused_since_log = 0
        return Refused(reason, text)


def unbounded() -> Ticket:
    """The ticket of a request admitted without an `Admission` (none configured)."""
    return Ticket()
