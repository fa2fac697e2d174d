"""Slack retries and replays are worked once.

Slack re-sends an event it thinks was not received (`X-Slack-Retry-Num` / `X-Slack-Retry-Reason`
headers: after a timeout, a 5xx, a lost connection), and a captured signed request can be replayed
within the signature's five minutes. Each delivery has an identity that a retry or a replay keeps:

- Events API: the envelope's `event_id`;
- slash commands and interactions (the Re-run button): the `trigger_id` with the `response_url`, both
  fresh for every invocation.

Two layers decide whether a delivery is new:

1. `Deduplicate`, a Bolt middleware after the signature check, keeps the keys seen in this process in a
   bounded TTL set (no I/O, so the ack stays immediate): a key seen already is acked (200, empty) and
   dropped; a retry of a delivery never seen (the first one got lost) goes on to its listener.
2. The listener's background work calls `Deliveries.claim` before anything else: with a store, one
   INSERT on a unique key decides between replicas and across restarts; rows older than the window are
   pruned now and then. A store that fails is logged and the work goes on (the in-memory layer still
   holds): a missed duplicate is better than a lost command.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from handlers.ports import Store

log = logging.getLogger(__name__)

# Slack retries an event three times within about five minutes, and a signature is valid for five
# minutes: an hour keeps every retry and replay well inside the window.
WINDOW_SECONDS = 3600.0
MAX_REMEMBERED = 20_000  # keys held in memory (oldest forgotten first); ~3 MB at most
STORE_SECONDS = 3.0  # a store slower than this is skipped for this delivery (logged)
PRUNE_EVERY_SECONDS = 600.0
FAILURE_LOG_SECONDS = 60.0  # a store that fails is logged at most this often


class DedupeMetrics(Protocol):
    def duplicate(self, kind: str, layer: str) -> None:
        """A delivery dropped as already taken: kind event/interaction, layer memory/store."""
        ...


def delivery_key(body: Mapping[str, Any]) -> str | None:
    """The identity a retry or a replay of this request keeps; None when it has none."""
    if body.get("type") == "event_callback":
        event_id = body.get("event_id")
        return f"event:{event_id}" if isinstance(event_id, str) and event_id else None
    trigger = body.get("trigger_id")
    if isinstance(trigger, str) and trigger:
        digest = hashlib.sha256(f"{trigger}\n{body.get('response_url') or ''}".encode()).hexdigest()
        return f"interaction:{digest[:40]}"
    return None


def _kind(key: str) -> str:
    return key.split(":", 1)[0]


class RecentKeys:
    """A set of keys that forgets each after `ttl_seconds`, and the oldest first beyond `max_keys`."""

    def __init__(
        self, ttl_seconds: float, max_keys: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_keys
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def add(self, key: str) -> bool:
        """Remember `key`; True iff it was not remembered already."""
        now = self._clock()
        while self._seen:
            oldest, at = next(iter(self._seen.items()))
            if now - at < self._ttl and len(self._seen) < self._max:
                break
            del self._seen[oldest]
        if key in self._seen:
            return False
        self._seen[key] = now
        return True

    def __len__(self) -> int:
        return len(self._seen)


class Deliveries:
    """Which Slack deliveries this bot has taken: in memory always, in the store when there is one."""

    def __init__(
        self,
        store: Store | None,
        metrics: DedupeMetrics,
        *,
        window_seconds: float = WINDOW_SECONDS,
        max_remembered: int = MAX_REMEMBERED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._window = window_seconds
        self._recent = RecentKeys(window_seconds, max_remembered, clock)
        self._clock = clock
        self._pruned_at: float | None = None
        self._failures = 0
        self._failure_logged_at: float | None = None

    def first_seen(self, key: str) -> bool:
        """In this process: True the first time `key` is seen within the window (pure, for the ack)."""
        if self._recent.add(key):
            return True
        self._metrics.duplicate(_kind(key), "memory")
        return False

    async def claim(self, body: Mapping[str, Any]) -> bool:
        """True when this delivery is the bot's to work: it has no key, there is no store, or this call
        recorded it there first. Never raises: a store that fails is logged and the delivery worked."""
        key = delivery_key(body)
        if key is None or self._store is None:
            return True
        try:
            async with asyncio.timeout(STORE_SECONDS):
                first = await self._store.claim_delivery(key)
        except Exception as error:  # slow or down: the in-memory layer still holds
            self._store_failed(key, error)
            return True
        if not first:
            self._metrics.duplicate(_kind(key), "store")
            log.info("Slack delivery %r was already taken (a retry or a replay): dropped", key)
            return False
        await self._prune()
        return True

    def _store_failed(self, key: str, error: Exception) -> None:
        """Logged at most once a minute (a database that is down fails every delivery), with a count."""
        self._failures += 1
        now = self._clock()
        if self._failure_logged_at is None or now - self._failure_logged_at >= FAILURE_LOG_SECONDS:
            log.warning(
                "could not record Slack delivery %r in the store (%s): working it; %d such since the "
                "last line (only this process's memory recognises retries and replays meanwhile)",
                key,
                _reason(error),
                self._failures,
            )
            self._failure_logged_at = now
            self._failures = 0

    async def _prune(self) -> None:
        """Forget the store's deliveries older than the window, at most every few minutes."""
        now = self._clock()
        if self._store is None:
            return
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = now
        before = datetime.now(UTC) - timedelta(seconds=self._window)
        try:
            async with asyncio.timeout(STORE_SECONDS):
                removed = await self._store.prune_deliveries(before)
        except Exception as error:
            log.warning("could not prune old Slack deliveries from the store (%s)", _reason(error))
            return
        if removed:
            log.info("forgot %d Slack deliveries older than %.0f s", removed, self._window)


def _reason(error: Exception) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {STORE_SECONDS:g} s"
    return f"{type(error).__name__}: {error}"[:200]


def _header(req: AsyncBoltRequest, name: str) -> str | None:
    """A header's value, cut short (it is logged with %r, so it cannot forge a line)."""
    values = req.headers.get(name)
    return str(values[0])[:40] if values else None


class Deduplicate(AsyncMiddleware):
    """Bolt middleware (after the signature check): a delivery seen already in this process is acked
    and dropped before any listener; every other one goes on."""

    def __init__(self, deliveries: Deliveries) -> None:
        self._deliveries = deliveries

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        key = delivery_key(req.body)
        retry = _header(req, "x-slack-retry-num")
        if key is None:
            return await next()
        if self._deliveries.first_seen(key):
            if retry is not None:
                reason = _header(req, "x-slack-retry-reason") or "unknown"
                log.info("Slack retry %r (%r) of %r, not seen before: working it", retry, reason, key)
            return await next()
        log.info(
            "Slack delivery %r seen already (%s): acknowledged, not worked again",
            key,
            f"retry {retry!r}" if retry is not None else "a replay",
        )
        return BoltResponse(status=200, body="")
