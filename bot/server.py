"""The web server of `purview-bot serve`: `/slack/events` (HTTP mode), `/healthz` and `/metrics`.

HTTP mode and Socket Mode share everything but the transport of Slack's requests: the same Azure
clients, Bolt app, metrics and health checks. `serve_http` is a context manager so that tests (and the
CLI) get a started server and its URL, and everything is closed on exit.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.azure import ConfigError, azure_clients
from bot.metrics import Metrics
from bot.service import AzureDiagnosisService
from bot.settings import Settings
from bot.slack_app import build_slack_app
from bot.watch_main import alert_handler, serving_store, watching
from handlers.background import Background
from handlers.watch.webhook import ALERTS_PATH

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
SLACK_RECHECK_SECONDS = 30.0  # how often /healthz may call auth.test again while Slack is not ready
SHUTDOWN_GRACE_SECONDS = 5.0  # beyond a diagnosis deadline, for posting what it found


class Readiness:
    """What `/healthz` reports: Azure clients open, Slack token accepted (auth.test), the socket up.

    auth.test runs on the first probe (not at start: a server nobody asks sends Slack nothing), then
    again at most every 30 s while it fails; once it succeeded the token is taken as good.
    """

    def __init__(self, client: AsyncWebClient, socket_mode: AsyncSocketModeHandler | None = None) -> None:
        self._client = client
        self._socket_mode = socket_mode
        self.azure_open = False
        self._slack_error: str | None = "not verified yet"
        self._slack_checked_at = float("-inf")

    async def verify_slack(self) -> None:
        self._slack_checked_at = time.monotonic()
        try:
            await self._client.auth_test()
        except SlackApiError as error:
            self._slack_error = f"auth.test failed: {error.response.get('error') or 'unknown error'}"
        except Exception as error:  # Slack unreachable
            self._slack_error = f"auth.test failed: {type(error).__name__}"
        else:
            self._slack_error = None
        if self._slack_error:
            log.warning("Slack is not ready: %s", self._slack_error)

    async def checks(self) -> dict[str, str]:
        if self._slack_error and time.monotonic() - self._slack_checked_at >= SLACK_RECHECK_SECONDS:
            await self.verify_slack()
        result = {
            "azure": "ok" if self.azure_open else "clients not open",
            "slack": self._slack_error or "ok",
        }
        if self._socket_mode is not None:
            connected = await self._socket_mode.client.is_connected()
            result["socketMode"] = "ok" if connected else "not connected"
        return result


def web_application(
    metrics: Metrics,
    readiness: Readiness,
    bolt: AsyncApp | None,
    alerts: Handler | None = None,  # alert webhook: see handlers/alert_intake.py
) -> web.Application:
    """`/healthz` and `/metrics`; `/slack/events` when Slack's requests come over HTTP (`bolt` given);
    `/alerts/azure-monitor` when `alerts` is given (`alert_route(...)`, only when
    PURVIEW_BOT_WEBHOOK_SECRET is set: the route is never served without its secret)."""

    async def health(_: web.Request) -> web.Response:
        checks = await readiness.checks()
        waiting = sorted(name for name, state in checks.items() if state != "ok")
        if waiting:
            body: dict[str, Any] = {"status": "unavailable", "notReady": waiting, "checks": checks}
            return web.json_response(body, status=503)
        return web.json_response({"status": "ok", "checks": checks})

    async def metrics_text(_: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = metrics.content_type
        return response

    app = web.Application()
    app.router.add_get("/healthz", health)
    app.router.add_get("/metrics", metrics_text)
    if bolt is not None:

        async def slack_events(request: web.Request) -> web.Response:
            return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

        app.router.add_post(EVENTS_PATH, slack_events)
    # --- alert webhook (handlers/alert_intake.py) ---
    if alerts is not None:
        app.router.add_post(ALERTS_PATH, alerts)
    # --- end alert webhook ---
    return app


@asynccontextmanager
async def running(app: web.Application, host: str, port: int) -> AsyncIterator[str]:
    """The application started on host:port (0 = any free port); yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        url_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        yield f"http://{url_host}:{bound[1]}"
    finally:
        await runner.cleanup()


def require_slack_settings(settings: Settings, *, socket_mode: bool) -> None:
    """One sentence naming what is missing, before anything is opened."""
    missing = [] if settings.slack_bot_token else ["SLACK_BOT_TOKEN"]
    if socket_mode and not settings.slack_app_token:
        missing.append("SLACK_APP_TOKEN")
    if not socket_mode and not settings.slack_signing_secret:
        missing.append("SLACK_SIGNING_SECRET")
    if missing:
        mode = "Socket Mode" if socket_mode else "HTTP mode (SLACK_APP_TOKEN is not set)"
        raise ConfigError(
            f"{' and '.join(missing)} must be set to serve Slack in {mode}: copy them from your Slack app's "
            "OAuth & Permissions and Basic Information pages."
        )


@asynccontextmanager
async def serve_http(settings: Settings, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Azure clients, the Slack app and the web server, started; yields the base URL, closes on exit."""
    require_slack_settings(settings, socket_mode=False)
    metrics = Metrics()
    background = Background()
    async with azure_clients(settings, observer=metrics) as clients, serving_store(settings) as store:
        service = AzureDiagnosisService(clients, settings)
        bolt = build_slack_app(settings, service, metrics, background, store=store)
        readiness = Readiness(bolt.client)
        readiness.azure_open = True
        try:
            # the scan-failure watcher (unless PURVIEW_BOT_WATCH_INTERVAL=0), also the webhook's intake
            async with watching(
                settings, clients=clients, service=service, client=bolt.client, metrics=metrics, store=store
            ) as watcher:
                alerts = alert_handler(settings, watcher, metrics, background)
                async with running(web_application(metrics, readiness, bolt, alerts), host, port) as url:
                    log.info("purview-bot serving Slack on %s%s", url, EVENTS_PATH)
                    yield url
                    # stop taking requests first (leaving this block), then let work in progress finish
                await background.drain(settings.deadline_seconds + SHUTDOWN_GRACE_SECONDS)
        finally:
            readiness.azure_open = False


async def serve_http_forever(settings: Settings, *, host: str = "0.0.0.0", port: int | None = None) -> None:
    """`purview-bot serve` in HTTP mode, until SIGINT or SIGTERM."""
    async with serve_http(settings, host=host, port=settings.port if port is None else port):
        await until_stopped()


async def run_socket_mode(settings: Settings, *, host: str = "0.0.0.0", port: int | None = None) -> None:
    """`purview-bot serve` in Socket Mode (SLACK_APP_TOKEN set): Slack's requests over a websocket the
    bot opens, so no public URL; the web server still answers `/healthz` and `/metrics`."""
    require_slack_settings(settings, socket_mode=True)
    metrics = Metrics()
    background = Background()
    async with azure_clients(settings, observer=metrics) as clients, serving_store(settings) as store:
        service = AzureDiagnosisService(clients, settings)
        bolt = build_slack_app(settings, service, metrics, background, socket_mode=True, store=store)
        handler = AsyncSocketModeHandler(bolt, settings.slack_app_token or "")
        readiness = Readiness(bolt.client, handler)
        readiness.azure_open = True
        await readiness.verify_slack()
        web_port = settings.port if port is None else port
        async with (
            watching(
                settings, clients=clients, service=service, client=bolt.client, metrics=metrics, store=store
            ) as watcher,
            running(
                web_application(
                    metrics, readiness, None, alert_handler(settings, watcher, metrics, background)
                ),
                host,
                web_port,
            ) as url,
        ):
            await handler.client.connect()  # type: ignore[no-untyped-call]
            log.info("purview-bot connected to Slack in Socket Mode; health and metrics on %s", url)
            try:
                await until_stopped()
            finally:
                await handler.client.close()  # type: ignore[no-untyped-call]
                await background.drain(settings.deadline_seconds + SHUTDOWN_GRACE_SECONDS)
                readiness.azure_open = False


async def until_stopped() -> None:
    """Wait for SIGINT or SIGTERM (a platform stopping the process) and return, so everything closes."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
            pass
    try:
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
