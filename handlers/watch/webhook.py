"""`POST /alerts/azure-monitor?token=…`: Azure Monitor action groups report failed scan runs here.

Action groups cannot set headers, so the shared secret rides in the query string; it is compared in
constant time and never logged (the app's access log is off, and these logs name the path only). The
answer comes at once (202) and the runs go to the watcher in the background: Azure retries a webhook
that is slow or answers 5xx, and a retry would only report the same runs again.

The database decides who posts a run, so runs are only acknowledged when it answers: while it is down the
answer is 503 with `Retry-After` (Azure Monitor retries), never a 202 for runs that would be dropped. Runs
acknowledged just before it went away (their hand-over fails with `StoreUnavailable`) are kept in a
bounded backlog and handed over again once it answers. One payload hands over at most `max_runs` runs
(`PURVIEW_BOT_ALERT_MAX_RUNS`); the rest are dropped with a log line, and the watcher's sweep still
finds failed runs. Whatever happens, the answer is 202, 400, 401, 413 or 503, never a 500.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import random
from collections import deque
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

from aiohttp import web
from aiohttp.typedefs import Handler

from handlers.background import Background
from handlers.http_body import BodyTooLarge, read_body
from handlers.ports import StoreUnavailable
from handlers.watch.alerts import AlertPayloadError, AlertRun, inspect_alert

log = logging.getLogger(__name__)

ALERTS_PATH = "/alerts/azure-monitor"
MAX_BODY_BYTES = 1024 * 1024  # common-schema alerts are capped at 256 KB; Event Hub batches at 1 MB
MAX_RUNS = 100  # runs handed over per payload (PURVIEW_BOT_ALERT_MAX_RUNS)
MAX_BACKLOG_RUNS = 5000  # acknowledged runs kept while the database is away
RETRY_AFTER_SECONDS = 60  # what a 503 asks Azure Monitor to wait
BACKLOG_FIRST_RETRY = 1.0
BACKLOG_MAX_RETRY = 30.0

AlertResult = Literal["accepted", "unauthorized", "malformed", "ignored", "unavailable"]
Unavailable = Callable[[], str | None]
"""None when the database answers, else why not (`bot.store.ResilientStore.problem`)."""


class AlertIntake(Protocol):
    """Where the runs go (the watcher): claims, diagnoses and posts them like the runs a sweep finds."""

    async def runs_reported(self, runs: Sequence[AlertRun]) -> None: ...


class AlertMetrics(Protocol):
    """`bot.metrics.Metrics.alert`: counts `purview_bot_alerts_total{result}`."""

    def alert(self, result: str) -> None: ...


class Backlog:
    """Runs acknowledged (202) whose hand-over failed because the database went away: kept, at most
    `limit` of them, and handed over again, oldest first, once it answers (checked with backoff). The
    drain runs in `background`, so a shutdown gives it the drain window, then says what was lost."""

    def __init__(
        self,
        intake: AlertIntake,
        unavailable: Unavailable,
        background: Background,
        *,
        limit: int = MAX_BACKLOG_RUNS,
        first_retry: float = BACKLOG_FIRST_RETRY,
        max_retry: float = BACKLOG_MAX_RETRY,
    ) -> None:
        self._intake = intake
        self._unavailable = unavailable
        self._background = background
        self._limit = limit
        self._first_retry = first_retry
        self._max_retry = max_retry
        self._batches: deque[list[AlertRun]] = deque()
        self._draining = False

    @property
    def runs(self) -> int:
        return sum(len(batch) for batch in self._batches)

    def add(self, runs: list[AlertRun]) -> None:
        room = self._limit - self.runs
        kept = runs[: max(0, room)]
        if len(kept) < len(runs):
            log.error(
                "alert webhook: the backlog of runs waiting for the database is full (%d): %d run(s) dropped",
                self._limit,
                len(runs) - len(kept),
            )
        if not kept:
            return
        self._batches.append(kept)
        log.warning(
            "alert webhook: the database is unavailable: %d run(s) kept until it answers (%d waiting)",
            len(kept),
            self.runs,
        )
        if not self._draining:
            self._draining = True
            self._background.spawn(self._drain(), name="alert-backlog")

    def _delay(self, attempt: int) -> float:
        return float(min(self._max_retry, self._first_retry * 2.0**attempt) * random.uniform(0.8, 1.0))

    async def _drain(self) -> None:
        attempt = 0
        try:
            while self._batches:
                if self._unavailable() is not None:
                    await asyncio.sleep(self._delay(attempt))
                    attempt += 1
                    continue
                batch = self._batches[0]
                try:
                    await self._intake.runs_reported(batch)
                except StoreUnavailable:
                    await asyncio.sleep(self._delay(attempt))
                    attempt += 1
                    continue
                except Exception:
                    names = ", ".join(f"{run.source}/{run.scan}" for run in batch[:5])
                    log.exception("alert webhook: handing %d kept run(s) over failed (%s)", len(batch), names)
                else:
                    log.info("alert webhook: %d kept run(s) handed over to the watcher", len(batch))
                self._batches.popleft()
                attempt = 0
        finally:
            self._draining = False
            if self._batches:  # cancelled (a shutdown outlasting its drain window)
                log.error(
                    "alert webhook: %d acknowledged run(s) lost at shutdown: the database did not come back",
                    self.runs,
                )
                self._batches.clear()


def alert_route(
    secret: str,
    intake: AlertIntake,
    metrics: AlertMetrics,
    *,
    background: Background | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_runs: int = MAX_RUNS,
    unavailable: Unavailable | None = None,
    backlog_runs: int = MAX_BACKLOG_RUNS,
) -> Handler:
    """The aiohttp handler for `POST /alerts/azure-monitor`; `background` (the server's, so a shutdown
    drains it) keeps the intake tasks referenced. `unavailable` (the store's state): while it says why,
    runs are answered 503. Raises ValueError on an empty secret: an open webhook would let anyone make the
    bot post."""
    if not secret:
        raise ValueError("the alert webhook needs PURVIEW_BOT_WEBHOOK_SECRET")
    expected = secret.encode()
    tasks = background if background is not None else Background()
    down: Unavailable = unavailable or (lambda: None)
    backlog = Backlog(intake, down, tasks, limit=backlog_runs)

    async def deliver(runs: list[AlertRun]) -> None:
        try:
            await intake.runs_reported(runs)
        except StoreUnavailable:
            backlog.add(runs)
        except Exception:
            names = ", ".join(f"{run.source}/{run.scan}" for run in runs[:5])
            log.exception("alert webhook: handing %d run(s) to the watcher failed (%s)", len(runs), names)

    async def handle(request: web.Request) -> tuple[AlertResult, web.Response]:
        given = request.query.get("token", "")
        if not hmac.compare_digest(given.encode(), expected):
            log.warning(
                "alert webhook: refused a request from %s (%s token)",
                request.remote,
                "wrong" if given else "no",
            )
            return "unauthorized", _answer(401, error="unauthorized")
        try:
            body = await read_body(request, max_body_bytes)
        except BodyTooLarge:
            log.warning("alert webhook: refused a body over %d bytes from %s", max_body_bytes, request.remote)
            return "malformed", _answer(413, error=f"body over {max_body_bytes} bytes")
        except (ConnectionError, web.RequestPayloadError) as error:  # gone, or a broken chunked body
            log.warning("alert webhook: the body from %s could not be read (%s)", request.remote, error)
            return "malformed", _answer(400, error="request body unreadable")
        try:
            parsed = inspect_alert(json.loads(body))
        except (
            ValueError,
            RecursionError,
        ) as error:  # JSONDecodeError, UnicodeDecodeError, AlertPayloadError
            reason = str(error) if isinstance(error, AlertPayloadError) else "body is not JSON"
            log.warning("alert webhook: malformed body from %s: %s", request.remote, reason)
            return "malformed", _answer(400, error=reason)
        if not parsed.runs:
            log.info("alert webhook: nothing to post: %s", parsed.ignored_reason)
            return "ignored", _answer(202, ignored=parsed.ignored_reason or "no runs")
        problem = down()
        if problem is not None:
            log.warning(
                "alert webhook: %d run(s) refused with 503 (Azure Monitor retries): the database is %s",
                len(parsed.runs),
                problem,
            )
            response = _answer(503, error="the database is unavailable; retry later")
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return "unavailable", response
        runs = parsed.runs[:max_runs]
        dropped = len(parsed.runs) - len(runs)
        if dropped:
            log.warning(
                "alert webhook: a payload named %d runs: the first %d are taken, %d dropped "
                "(the watcher's sweep still finds failed runs)",
                len(parsed.runs),
                len(runs),
                dropped,
            )
        log.info(
            "alert webhook: %d run(s) reported: %s",
            len(runs),
            ", ".join(f"{run.account or '?'}/{run.source}/{run.scan}" for run in runs[:10]),
        )
        tasks.spawn(deliver(runs), name="alert-intake")
        if dropped:
            return "accepted", _answer(202, accepted=len(runs), dropped=dropped)
        return "accepted", _answer(202, accepted=len(runs))

    async def alerts(request: web.Request) -> web.StreamResponse:
        try:
            result, response = await handle(request)
        except Exception:  # a bug or a broken connection: a 5xx would only make Azure retry
            log.exception("alert webhook: unexpected error handling a request from %s", request.remote)
            result, response = "malformed", _answer(400, error="bad request")
        metrics.alert(result)
        return response

    return alerts


def _answer(status: int, **body: str | int) -> web.Response:
    return web.json_response(body, status=status)
