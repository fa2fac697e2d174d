"""Composition of the scan-failure watcher: settings, store, Slack client and Azure clients → `Watcher`.

`serve` runs it beside the Slack app (`watching`); `purview-bot watch` runs it alone (`run_watch`), with
`--once` for cron jobs and tests.

The database may be down when a process starts, or go away later: `serve` and `watch` never wait on it
nor exit for it. Their store is a `ResilientStore` (opened in the background with backoff, every connect
and statement bounded by `PURVIEW_BOT_DATABASE_TIMEOUT`): slash commands answer without it, the watcher
starts sweeping once it is open, the webhook answers 503 while it is away, and `/healthz` says "degraded"
with the reason. Only `watch --once` (a cron job) gives up: exit 1 when the database does not answer.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
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
from bot.store import ResilientStore, Store, open_store
from checks.gateways.factory import AzureClients
from checks.model import Report
from handlers.background import Background
from handlers.ports import DiagnosisService
from handlers.slack.watch_publisher import ChannelPacer, WatchPublisher
from handlers.watch.config import WatchConfig
from handlers.watch.routing import Router, RoutesError, WatchPolicy, parse_routes
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
            "Automatic posts, by kind (failure, storm, repeat, recovery, fallback)",
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


def watch_policy(settings: Settings) -> WatchPolicy:
    """Who may remove another channel's watch: the on-call channels (the routes, the alert channel) and
    `PURVIEW_BOT_ADMIN_USERGROUP`. Raises ConfigError on a bad PURVIEW_BOT_ROUTES."""
    return WatchPolicy(router_for(settings), settings.admin_usergroup or None)


def resilient_store(settings: Settings) -> ResilientStore:
    """The store of a long-running process (not opened yet: `await store.start()`)."""
    try:
        return ResilientStore(settings.database_url, timeout=settings.database_timeout)
    except ValueError as error:  # an unsupported URL: nothing to retry
        raise ConfigError(str(error)) from None


def store_check(store: ResilientStore | None) -> Callable[[], Awaitable[str]]:
    """The `/healthz` check of the database: "ok", or why not (the kind of failure, no host or port)."""

    async def check() -> str:
        if store is None:
            return "not configured"
        return "ok" if store.problem is None else f"database {store.problem}"

    return check


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
    the caller closes) when given, else opens its own. The sweeps start once the database is open (a
    `ResilientStore` may still be connecting); the caller never waits for it.
    """
    if not settings.watch_interval and not settings.webhook_secret:
        yield None
        return
    if not settings.accounts:
        raise ConfigError("the watcher needs PURVIEW_ACCOUNTS (or set PURVIEW_BOT_WATCH_INTERVAL=0)")
    router = router_for(settings)  # a bad PURVIEW_BOT_ROUTES fails the start, before a store opens
    own = store is None
    if store is None:
        store = resilient_store(settings)
        await store.start()
    try:
        watcher = build_watcher(
            settings, store=store, clients=clients, service=service, client=client, metrics=metrics
        )
        if not router.configured:
            log.warning(
                "no PURVIEW_BOT_ALERT_CHANNEL or PURVIEW_BOT_ROUTES: only scans with a watch are posted"
            )
        stop = asyncio.Event()
        loop = (
            asyncio.ensure_future(_sweep_when_open(watcher, store, stop)) if settings.watch_interval else None
        )
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


async def _sweep_when_open(watcher: Watcher, store: Store, stop: asyncio.Event) -> None:
    """The watcher's loop, once the database is open (a ResilientStore retries with backoff meanwhile)."""
    if isinstance(store, ResilientStore) and not store.is_open:
        log.warning("the watcher waits for the database before its first sweep")
        if not await store.wait_open(stop):
            return
        log.info("the database is open: the watcher starts")
    await watcher.run_forever(stop)


@asynccontextmanager
async def serving_store(settings: Settings) -> AsyncIterator[ResilientStore]:
    """For `serve`: the store (the last report per source, the channels' watches, the watcher's state),
    never waited for: its first attempt gets 2 s at most, then it is retried with backoff in the
    background while `serve` answers without it (reports do not say what changed, watch commands say
    the database is away, the webhook answers 503, `/healthz` is "degraded"). Raises ConfigError for a
    URL of the wrong kind."""
    store = resilient_store(settings)
    await store.start()
    if store.problem is not None:
        log.warning(
            "serving without the database for now (%s): reports work; watches, the watcher and the alert "
            "webhook wait for it",
            store.problem,
        )
    try:
        yield store
    finally:
        await store.close()


def alert_handler(
    settings: Settings,
    watcher: Watcher | None,
    metrics: Metrics,
    background: Background,
    store: ResilientStore | None = None,
) -> Handler | None:
    """`POST /alerts/azure-monitor` feeding the watcher, when PURVIEW_BOT_WEBHOOK_SECRET is set: at most
    `PURVIEW_BOT_ALERT_MAX_RUNS` runs per payload, and 503 while `store` is unavailable."""
    if watcher is None or not settings.webhook_secret:
        return None
    unavailable = (lambda: store.problem) if store is not None else None
    return alert_route(
        settings.webhook_secret,
        watcher,
        metrics,
        background=background,
        max_runs=settings.alert_max_runs,
        unavailable=unavailable,
    )


async def run_watch(settings: Settings, *, once: bool) -> int:
    """`purview-bot watch [--once]`: the watcher alone. Exit 0, or 1 when a `--once` sweep failed."""
    if not settings.slack_bot_token:
        raise ConfigError("SLACK_BOT_TOKEN must be set: the watcher posts to Slack")
    if not settings.accounts:
        raise ConfigError("PURVIEW_ACCOUNTS must name the Purview account(s) to watch")
    router = router_for(settings)
    metrics = Metrics()
    async with azure_clients(settings, observer=metrics) as clients:
        store = await _watch_store(settings, once=once)
        if store is None:
            return 1 if once else 0
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


async def _watch_store(settings: Settings, *, once: bool) -> Store | None:
    """`watch --once`: the database opened within the timeout, or None (logged: exit 1). `watch`: a
    ResilientStore once it is open (retrying with backoff), or None when stopped by a signal first."""
    if once:
        try:
            return await open_store(settings.database_url, connect_timeout=settings.database_timeout)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        except Exception as error:
            log.error("the database (PURVIEW_BOT_DATABASE_URL) is unavailable: %s", type(error).__name__)
            return None
    store = resilient_store(settings)
    await store.start()
    stop = asyncio.Event()
    with _stop_on_signals(stop):
        if store.problem is not None:
            log.warning("the watcher waits for the database (%s)", store.problem)
        if await store.wait_open(stop):
            return store
    await store.close()
    return None


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
