"""Composition of the scan-failure watcher: settings, store, Slack client and Azure clients → `Watcher`.

`serve` runs it beside the Slack app (`watching`); `purview-bot watch` runs it alone (`run_watch`), with
`--once` for cron jobs and tests.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta

from aiohttp.typedefs import Handler
from prometheus_client import Counter
from slack_sdk.web.async_client import AsyncWebClient

from bot.azure import ConfigError, azure_clients
from bot.metrics import Metrics
from bot.service import AzureDiagnosisService
from bot.settings import Settings
from bot.slack_client import web_client
from bot.store import Store, open_store
from checks.gateways.factory import AzureClients
from checks.model import Report
from handlers.background import Background
from handlers.ports import DiagnosisService
from handlers.slack.watch_publisher import ChannelPacer, WatchPublisher
from handlers.watch.config import WatchConfig
from handlers.watch.routing import Router, RoutesError, parse_routes
from handlers.watch.watcher import Watcher
from handlers.watch.webhook import alert_route

log = logging.getLogger(__name__)


class WatcherMetrics:
    """The watcher's counters, in the bot's registry; diagnoses are counted with the bot's own."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._sweeps = Counter(
            "purview_bot_watch_sweeps",
            "Watcher sweeps, by account and result (ok, failed)",
            ["account", "result"],
            registry=metrics.registry,
        )
        self._posts = Counter(
            "purview_bot_watch_posts",
            "Automatic posts, by kind (failure, storm, recovery)",
            ["kind"],
            registry=metrics.registry,
        )

    def sweep_done(self, account: str, ok: bool) -> None:
        self._sweeps.labels(account=account, result="ok" if ok else "failed").inc()

    def watch_post(self, kind: str) -> None:
        self._posts.labels(kind=kind).inc()

    def diagnosis(self, report: Report) -> None:
        self._metrics.diagnosis(report)

    def diagnosis_failed(self) -> None:
        self._metrics.diagnosis_failed()


def watch_config(settings: Settings) -> WatchConfig:
    return WatchConfig(
        accounts=tuple(settings.accounts),
        interval_seconds=settings.watch_interval,
        statuses=settings.watch_status_set,
        lookback=timedelta(seconds=settings.watch_lookback),
        concurrency=settings.watch_concurrency,
        deadline_seconds=settings.deadline_seconds,
    )


def router_for(settings: Settings) -> Router:
    try:
        routes = parse_routes(settings.routes)
    except RoutesError as error:
        raise ConfigError(str(error)) from None
    return Router(routes, settings.alert_channel)


def build_watcher(
    settings: Settings,
    *,
    store: Store,
    clients: AzureClients,
    service: DiagnosisService,
    client: AsyncWebClient,
    metrics: Metrics,
) -> Watcher:
    return Watcher(
        config=watch_config(settings),
        store=store,
        purview=clients.purview,
        service=service,
        publisher=WatchPublisher(client, ChannelPacer()),
        router=router_for(settings),
        metrics=WatcherMetrics(metrics),
    )


@asynccontextmanager
async def watching(
    settings: Settings,
    *,
    clients: AzureClients,
    service: DiagnosisService,
    client: AsyncWebClient,
    metrics: Metrics,
    store: Store | None = None,
) -> AsyncIterator[Watcher | None]:
    """For `serve`: the watcher, sweeping in the background unless `PURVIEW_BOT_WATCH_INTERVAL=0`.

    Yields None when neither the sweeps nor the alert webhook need it. Uses `store` (the caller's, which
    the caller closes) when given, else opens its own.
    """
    if not settings.watch_interval and not settings.webhook_secret:
        yield None
        return
    if not settings.accounts:
        raise ConfigError("the watcher needs PURVIEW_ACCOUNTS (or set PURVIEW_BOT_WATCH_INTERVAL=0)")
    router = router_for(settings)  # a bad PURVIEW_BOT_ROUTES fails the start, before a store opens
    own = store is None
    if store is None:
        store = await open_store(settings.database_url)
    try:
        watcher = build_watcher(
            settings, store=store, clients=clients, service=service, client=client, metrics=metrics
        )
        if not router.configured:
            log.warning(
                "no PURVIEW_BOT_ALERT_CHANNEL or PURVIEW_BOT_ROUTES: only scans with a watch are posted"
            )
        stop = asyncio.Event()
        loop = asyncio.ensure_future(watcher.run_forever(stop)) if settings.watch_interval else None
        try:
            yield watcher
        finally:
            stop.set()
            if loop is not None:
                try:
                    await asyncio.wait_for(loop, timeout=settings.deadline_seconds)
                except TimeoutError:
                    log.warning("the watcher did not stop in time; cancelled")
                except Exception:
                    log.exception("the watcher stopped with an error")
    finally:
        if own:
            await store.close()


@asynccontextmanager
async def serving_store(settings: Settings) -> AsyncIterator[Store | None]:
    """For `serve`: the store, always opened (the last report per source, the channels' watches, and
    the watcher's state). When the watcher and the webhook are off, a store that cannot be opened is
    logged and `serve` goes on without it (reports work, watches do not); otherwise the start fails."""
    needed = bool(settings.watch_interval or settings.webhook_secret)
    try:
        store = await open_store(settings.database_url)
    except Exception:
        if needed:
            raise
        log.exception(
            "could not open PURVIEW_BOT_DATABASE_URL: serving without it "
            "(reports do not say what changed since the last check; watches are off)"
        )
        yield None
        return
    try:
        yield store
    finally:
        await store.close()


def alert_handler(
    settings: Settings, watcher: Watcher | None, metrics: Metrics, background: Background
) -> Handler | None:
    """`POST /alerts/azure-monitor` feeding the watcher, when PURVIEW_BOT_WEBHOOK_SECRET is set."""
    if watcher is None or not settings.webhook_secret:
        return None
    return alert_route(settings.webhook_secret, watcher, metrics, background=background)


async def run_watch(settings: Settings, *, once: bool) -> int:
    """`purview-bot watch [--once]`: the watcher alone. Exit 0, or 1 when a `--once` sweep failed."""
    if not settings.slack_bot_token:
        raise ConfigError("SLACK_BOT_TOKEN must be set: the watcher posts to Slack")
    if not settings.accounts:
        raise ConfigError("PURVIEW_ACCOUNTS must name the Purview account(s) to watch")
    router = router_for(settings)
    metrics = Metrics()
    async with azure_clients(settings, observer=metrics) as clients:
        store = await open_store(settings.database_url)
        try:
            if not router.configured and not await store.watches():
                raise ConfigError(
                    "no channel to post to: set PURVIEW_BOT_ALERT_CHANNEL or PURVIEW_BOT_ROUTES"
                )
            client = web_client(
                token=settings.slack_bot_token, base_url=settings.slack_api_url, counter=metrics
            )
            service = AzureDiagnosisService(clients, settings)
            watcher = build_watcher(
                settings, store=store, clients=clients, service=service, client=client, metrics=metrics
            )
            if once:
                return await _once(watcher)
            if settings.watch_interval <= 0:
                raise ConfigError("PURVIEW_BOT_WATCH_INTERVAL must be above 0 for `watch` (or use --once)")
            stop = asyncio.Event()
            with _stop_on_signals(stop):
                log.info("watching %s every %.0f s", ", ".join(settings.accounts), settings.watch_interval)
                await watcher.run_forever(stop)
            return 0
        finally:
            await store.close()


async def _once(watcher: Watcher) -> int:
    failed = False
    for account in watcher.config.accounts:
        try:
            await watcher.sweep_if_leased(account)
        except Exception:
            log.exception("sweep of %s failed", account)
            failed = True
    return 1 if failed else 0


class _stop_on_signals:
    """SIGINT/SIGTERM set `stop`, so the loop finishes its sweep and releases its leases."""

    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop
        self._handled: list[signal.Signals] = []

    def __enter__(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._stop.set)
                self._handled.append(sig)

    def __exit__(self, *args: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._handled:
            loop.remove_signal_handler(sig)
