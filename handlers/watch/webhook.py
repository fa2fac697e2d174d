"""`POST /alerts/azure-monitor?token=…`: Azure Monitor action groups report failed scan runs here.

Action groups cannot set headers, so the shared secret rides in the query string; it is compared in
constant time and never logged (the app's access log is off, and these logs name the path only). The
answer comes at once (202) and the runs go to the watcher in the background: Azure retries a webhook
that is slow or answers 5xx, and a retry would only report the same runs again. Whatever happens, the
answer is 202, 400, 401 or 413, never a 500.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Sequence
from typing import Literal, Protocol

from aiohttp import web
from aiohttp.typedefs import Handler

from handlers.background import Background
from handlers.watch.alerts import AlertPayloadError, AlertRun, inspect_alert

log = logging.getLogger(__name__)

ALERTS_PATH = "/alerts/azure-monitor"
MAX_BODY_BYTES = 1024 * 1024  # common-schema alerts are capped at 256 KB; Event Hub batches at 1 MB
_CHUNK_BYTES = 64 * 1024

AlertResult = Literal["accepted", "unauthorized", "malformed", "ignored"]


class AlertIntake(Protocol):
    """Where the runs go (the watcher): claims, diagnoses and posts them like the runs a sweep finds."""

    async def runs_reported(self, runs: Sequence[AlertRun]) -> None: ...


class AlertMetrics(Protocol):
    """`bot.metrics.Metrics.alert`: counts `purview_bot_alerts_total{result}`."""

    def alert(self, result: str) -> None: ...


class _BodyTooLarge(Exception):
    pass


def alert_route(
    secret: str,
    intake: AlertIntake,
    metrics: AlertMetrics,
    *,
    background: Background | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Handler:
    """The aiohttp handler for `POST /alerts/azure-monitor`; `background` (the server's, so a shutdown
    drains it) keeps the intake tasks referenced. Raises ValueError on an empty secret: an open webhook
    would let anyone make the bot post."""
    if not secret:
        raise ValueError("the alert webhook needs PURVIEW_BOT_WEBHOOK_SECRET")
    expected = secret.encode()
    tasks = background if background is not None else Background()

    async def deliver(runs: list[AlertRun]) -> None:
        try:
            await intake.runs_reported(runs)
        except Exception:
            names = ", ".join(f"{run.source}/{run.scan}" for run in runs[:5])
            log.exception("alert webhook: handing %d run(s) to the watcher failed (%s)", len(runs), names)

    async def read_body(request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > max_body_bytes:
            raise _BodyTooLarge
        body = bytearray()
        async for chunk in request.content.iter_chunked(_CHUNK_BYTES):
            body.extend(chunk)
            if len(body) > max_body_bytes:
                raise _BodyTooLarge
        return bytes(body)

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
            body = await read_body(request)
        except _BodyTooLarge:
            log.warning("alert webhook: refused a body over %d bytes from %s", max_body_bytes, request.remote)
            return "malformed", _answer(413, error=f"body over {max_body_bytes} bytes")
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
        log.info(
            "alert webhook: %d run(s) reported: %s",
            len(parsed.runs),
            ", ".join(f"{run.account or '?'}/{run.source}/{run.scan}" for run in parsed.runs[:10]),
        )
        tasks.spawn(deliver(parsed.runs), name="alert-intake")
        return "accepted", _answer(202, accepted=len(parsed.runs))

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
