"""The web server of `purview-bot serve`: `/slack/events` (HTTP mode), `/healthz` and `/metrics`.

HTTP mode and Socket Mode share everything but the transport of Slack's requests: the same Azure
clients, Bolt app, metrics and health checks. `serve_http` is a context manager so that tests (and the
CLI) get a started server and its URL, and everything is closed on exit.

The server faces whatever reaches its port, so before any of it reaches Bolt:

- a request's headers, then its body, must arrive within `PURVIEW_BOT_HTTP_READ_TIMEOUT` seconds (aiohttp's
  keep-alive timer closes a connection that has not sent its headers; the body is read under a timeout);
- at most `PURVIEW_BOT_HTTP_MAX_CONNECTIONS` connections are open: beyond it the oldest one still sending
  its request makes room, and when all are being answered the newcomer gets a 503 (`ConnectionGate`);
- `/slack/events` reads at most `SLACK_MAX_BODY_BYTES` (else 413) and verifies Slack's signature over the
  raw bytes before anything parses them (else 401); a signed body Bolt could not parse is a 400;
- each refusal is counted (`purview_bot_http_refused_total{reason}`) and logged at most once a minute per
  reason, in one line with no body; so are asyncio's and aiohttp's own complaints about the network.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.azure import ConfigError, azure_clients
from bot.metrics import Metrics
from bot.service import AzureDiagnosisService
from bot.settings import Settings
from bot.slack_app import SlackIdentity, build_slack_app
from bot.watch_main import alert_handler, serving_store, store_check, watching
from handlers.background import Background
from handlers.http_body import BodyTooLarge, read_body
from handlers.watch.webhook import ALERTS_PATH

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
SLACK_RECHECK_SECONDS = 30.0  # the longest pause between two auth.test calls while Slack is not ready
CHECK_SECONDS = 3.0  # each extra /healthz check answers within this, else it reports "no answer within"
SLACK_MAX_BODY_BYTES = 512 * 1024  # Slack's requests are a few KB; a message event with blocks, < 200 KB
SIGNATURE_MAX_AGE_SECONDS = 5 * 60  # as slack_sdk's verifier: older (or later) timestamps are replays
LOG_INTERVAL_SECONDS = 60.0  # one log line per kind of refusal (and network complaint) per interval
LINGER_SECONDS = 1.0  # after answering a request whose body is unread, how long aiohttp still reads it
SHUTDOWN_SECONDS = 3.0  # for requests being answered when the server stops (acks take milliseconds)
BACKLOG = 128


# --- logging that an attacker cannot flood or forge ------------------------------------------------------


def printable(value: object, limit: int = 120) -> str:
    """Text from a request for a log line: control characters (a newline would forge a line) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value)[:limit])


class RateLimitedLog:
    """A warning per key at most once per interval; the next one says how many were left out."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = LOG_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._seen: dict[str, tuple[float, int]] = {}

    def warning(self, key: str, message: str, *args: object) -> None:
        now = self._clock()
        last, left_out = self._seen.get(key, (-math.inf, 0))
        if now - last < self._interval:
            self._seen[key] = (last, left_out + 1)
            return
        self._seen[key] = (now, 0)
        if left_out:
            message += " (and %d more in the last %.0f s)"
            args = (*args, left_out, now - last)
        self._logger.warning(message, *args)


class RepeatFilter(logging.Filter):
    """On a library's logger: a record starting with one of `prefixes` goes through at most once per
    interval, as one line (its traceback reduced to the exception's type and text), saying how many were
    left out. Without it, a full file-descriptor table makes asyncio log a traceback per accept() try."""

    def __init__(
        self,
        prefixes: tuple[str, ...],
        interval: float = LOG_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        *,
        only: tuple[type[BaseException], ...] = (BaseException,),
    ) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.only = (
            only  # a record whose exception is of another type is left alone (a bug keeps its traceback)
        )
        self._interval = interval
        self._clock = clock
        self._seen: dict[str, tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        prefix = next((p for p in self.prefixes if text.startswith(p)), None)
        error = record.exc_info[1] if record.exc_info else None
        if prefix is None or (error is not None and not isinstance(error, self.only)):
            return True
        now = self._clock()
        last, left_out = self._seen.get(prefix, (-math.inf, 0))
        if now - last < self._interval:
            self._seen[prefix] = (last, left_out + 1)
            return False
        self._seen[prefix] = (now, 0)
        line = printable(text.splitlines()[0] if text else "", 200)
        if error is not None:
            line += f" ({type(error).__name__}: {printable(error, 200)})"
        if left_out:
            line += f" (and {left_out} more in the last {now - last:.0f} s)"
        record.msg, record.args, record.exc_info, record.exc_text = line, None, None, None
        return True


# what the network makes these libraries log: the file-descriptor table full, a malformed request or a
# client gone (an exception from a handler, a bug, keeps its line and traceback)
LIBRARY_COMPLAINTS: dict[str, tuple[tuple[str, ...], tuple[type[BaseException], ...]]] = {
    "asyncio": (("socket.accept() out of system resource",), (OSError,)),
    "aiohttp.server": (("Error handling request",), (HttpProcessingError, ConnectionError)),
}


def limit_library_logs() -> None:
    """Install the `RepeatFilter`s (once per process)."""
    for name, (prefixes, kinds) in LIBRARY_COMPLAINTS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):
            logger.addFilter(RepeatFilter(prefixes, only=kinds))


# --- connections ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpLimits:
    """`PURVIEW_BOT_HTTP_MAX_CONNECTIONS`, `PURVIEW_BOT_HTTP_READ_TIMEOUT`, and the body cap of Slack's
    requests."""

    max_connections: int = 64
    read_seconds: float = 5.0
    max_body_bytes: int = SLACK_MAX_BODY_BYTES

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(max_connections=settings.http_max_connections, read_seconds=settings.http_read_seconds)


_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 17\r\n"
    b"Retry-After: 1\r\nConnection: close\r\n\r\nserver busy, retry"
)


class _Busy(asyncio.Protocol):
    """A connection beyond the limit when every other one is being answered: a 503, then closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(_BUSY)
        transport.close()


class ConnectionGate:
    """The listening socket's protocol factory: at most `limit` connections at once.

    aiohttp has no connection limit, and each connection is a file descriptor. A new connection beyond
    the limit closes the oldest one not being answered (still sending its headers or body, or idle
    between requests): a trickling client cannot hold a slot against a real request, which arrives in
    one packet. When every connection is being answered (a Slack request read and verified, Bolt
    answering it) the new one gets a 503 and is closed.
    """

    def __init__(self, limits: HttpLimits, refused: Callable[[str, str], None]) -> None:
        self.limits = limits
        self._refused = refused
        self._server: web.Server | None = None
        self._opened: dict[web.RequestHandler, float] = {}
        self._answering: set[web.RequestHandler] = set()

    def attach(self, server: web.Server) -> None:
        self._server = server

    def __call__(self) -> asyncio.BaseProtocol:
        server = self._server
        assert server is not None, "attach() the runner's server first"
        live = [h for h in server.connections if h.transport is not None]
        if len(live) >= self.limits.max_connections:
            alive = set(live)
            self._opened = {h: at for h, at in self._opened.items() if h in alive}
            idle = [h for h in live if h not in self._answering]
            if not idle:
                self._refused("busy", f"{len(live)} connections all being answered: a new one got a 503")
                return _Busy()
            oldest = min(idle, key=lambda h: self._opened.get(h, -math.inf))
            oldest.force_close()
            self._refused(
                "connection_limit",
                f"{len(live)} connections open: closed the oldest one still sending its request",
            )
        elif len(self._opened) > 2 * self.limits.max_connections:
            alive = set(live)
            self._opened = {h: at for h, at in self._opened.items() if h in alive}
        handler = server()
        self._opened[handler] = time.monotonic()
        return handler

    @contextmanager
    def answering(self, request: web.BaseRequest) -> Iterator[None]:
        """While a request that has been read is answered, its connection is not closed to make room."""
        protocol = request.protocol
        self._answering.add(protocol)
        try:
            yield
        finally:
            self._answering.discard(protocol)


GATE = web.AppKey("connection_gate", ConnectionGate)


# --- /slack/events --------------------------------------------------------------------------------------


class SlackSignature:
    """Slack's request signature, checked on the raw body before anything parses it.

    `v0=hex(HMAC-SHA256(secret, "v0:{timestamp}:{body}"))` with a timestamp within five minutes; a
    timestamp that is not a number, a signature that is not ASCII, a missing header: all just invalid.
    """

    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret.encode()
        self._verifier = SignatureVerifier(secret)
        self._clock = clock

    def valid(self, body: bytes, timestamp: str | None, signature: str | None) -> bool:
        if not timestamp or not signature or not signature.isascii() or len(signature) > 128:
            return False
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
            return False
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            # never what Slack sends; slack_sdk's verifier decodes, so the same scheme over the bytes
            if abs(self._clock() - int(timestamp)) > SIGNATURE_MAX_AGE_SECONDS:
                return False
            digest = hmac.new(self._secret, b"v0:%s:%s" % (timestamp.encode(), body), hashlib.sha256)
            return hmac.compare_digest(f"v0={digest.hexdigest()}", signature)
        return self._verifier.is_valid(text, timestamp, signature)


class SlackEndpoint:
    """`POST /slack/events`: the body read (bounded in size and time), the signature verified, then Bolt.

    Nothing unverified reaches Bolt, so nothing unverified is parsed or logged by it (Bolt checks the
    signature again, a second line). Answers: 401 bad, missing or stale signature; 413 body too large;
    408 body too slow; 400 a signed body that is not UTF-8 or not what Bolt can parse; else Bolt's.
    """

    def __init__(
        self,
        bolt: AsyncApp,
        signing_secret: str,
        gate: ConnectionGate,
        refused: Callable[[web.BaseRequest, str, str], None],
    ) -> None:
        self._bolt = bolt
        self._signature = SlackSignature(signing_secret)
        self._gate = gate
        self._refused = refused

    async def handle(self, request: web.Request) -> web.StreamResponse:
        limits = self._gate.limits
        try:
            body = await read_body(request, limits.max_body_bytes, limits.read_seconds)
        except BodyTooLarge:
            self._refused(request, "too_large", f"a body over {limits.max_body_bytes} bytes")
            return _closing(web.Response(status=413, text="request body too large"))
        except TimeoutError:
            self._refused(request, "slow_body", f"a body not received within {limits.read_seconds:g} s")
            return _closing(web.Response(status=408, text="request body too slow"))
        except (ConnectionError, web.RequestPayloadError) as error:  # gone, or a broken chunked body
            self._refused(request, "broken_body", f"the body could not be read ({type(error).__name__})")
            return _closing(web.Response(status=400, text="request body unreadable"))
        with self._gate.answering(request):
            headers = request.headers
            timestamp = headers.get("X-Slack-Request-Timestamp")
            if not self._signature.valid(body, timestamp, headers.get("X-Slack-Signature")):
                self._refused(
                    request, "bad_signature", f"a bad, missing or stale signature ({len(body)} bytes)"
                )
                return web.json_response({"error": "invalid request"}, status=401)
            try:
                bolt_request = AsyncBoltRequest(
                    body=body.decode("utf-8"),
                    query=request.query_string,
                    headers=headers,  # type: ignore[arg-type]  # as slack_bolt's aiohttp adapter
                )
                if not isinstance(bolt_request.body, dict):
                    raise ValueError("not an object")
            except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
                self._refused(request, "bad_body", f"a signed body Bolt cannot read ({type(error).__name__})")
                return web.json_response({"error": "malformed request"}, status=400)
            return await to_aiohttp_response(await self._bolt.async_dispatch(bolt_request))


def _closing(response: web.Response) -> web.Response:
    response.force_close()
    return response


def within(handler: Handler, seconds: float, refused: Callable[[web.BaseRequest, str, str], None]) -> Handler:
    """`handler` (one that reads its body and answers at once: the alert webhook) cut off after `seconds`."""

    async def bounded(request: web.Request) -> web.StreamResponse:
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                return await handler(request)
        except TimeoutError:
            if not deadline.expired():
                raise
            refused(request, "slow_body", f"a request not received within {seconds:g} s")
            return _closing(web.Response(status=408, text="request too slow"))

    return bounded


# --- /healthz -------------------------------------------------------------------------------------------

Check = Callable[[], Awaitable[str]]
"""An extra /healthz check: "ok", or the reason it is not (a failing one degrades, it does not fail)."""


class Readiness:
    """What `/healthz` reports: Azure clients open, Slack token accepted (auth.test), the socket up, and
    any extra checks (`extra`, `add_check`).

    `start()` runs auth.test in the background (serve's start does not wait for it, and no request ever
    does): again after 1, 2, 4 … up to 30 s while it fails; once it succeeded the token is taken as good,
    and `identity` (Bolt's authorize) knows the bot's ids. A required check that fails makes `/healthz` a
    503 ("unavailable"); an extra one that fails or takes over 3 s makes it a 200 "degraded" naming it.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        socket_mode: AsyncSocketModeHandler | None = None,
        *,
        identity: SlackIdentity | None = None,
        extra: Mapping[str, Check] | None = None,
    ) -> None:
        self._client = client
        self._socket_mode = socket_mode
        self._identity = identity
        self._extra: dict[str, Check] = dict(extra or {})
        self.azure_open = False
        self._slack_error: str | None = "not verified yet"
        self._verifying: asyncio.Task[None] | None = None

    def add_check(self, name: str, check: Check) -> None:
        self._extra[name] = check

    async def verify_slack(self) -> bool:
        """One auth.test; True when Slack accepted the token."""
        try:
            response = await self._client.auth_test()
        except SlackApiError as error:
            self._slack_error = f"auth.test failed: {error.response.get('error') or 'unknown error'}"
        except Exception as error:  # Slack unreachable
            self._slack_error = f"auth.test failed: {type(error).__name__}"
        else:
            self._slack_error = None
            if self._identity is not None:
                self._identity.learned(response)
            return True
        log.warning("Slack is not ready: %s", self._slack_error)
        return False

    def start(self) -> None:
        """auth.test in the background, retried while it fails."""
        if self._verifying is None:
            self._verifying = asyncio.ensure_future(self._keep_verifying())

    async def _keep_verifying(self) -> None:
        pause = 1.0
        while not await self.verify_slack():
            await asyncio.sleep(pause)
            pause = min(pause * 2, SLACK_RECHECK_SECONDS)

    async def close(self) -> None:
        if self._verifying is not None:
            self._verifying.cancel()
            await asyncio.gather(self._verifying, return_exceptions=True)

    async def checks(self) -> dict[str, str]:
        self.start()  # no-op once started; never awaited here
        result = {
            "azure": "ok" if self.azure_open else "clients not open",
            "slack": self._slack_error or "ok",
        }
        if self._socket_mode is not None:
            connected = await self._socket_mode.client.is_connected()
            result["socketMode"] = "ok" if connected else "not connected"
        names = list(self._extra)
        answers = await asyncio.gather(*(_run_check(self._extra[name]) for name in names))
        result.update(zip(names, answers, strict=True))
        return result

    async def health(self) -> tuple[int, dict[str, Any]]:
        """The status code and body of `/healthz`."""
        checks = await self.checks()
        failing = sorted(name for name, state in checks.items() if state != "ok")
        not_ready = [name for name in failing if name not in self._extra]
        if not_ready:
            return 503, {"status": "unavailable", "notReady": not_ready, "checks": checks}
        if failing:
            return 200, {"status": "degraded", "degraded": failing, "checks": checks}
        return 200, {"status": "ok", "checks": checks}


async def _run_check(check: Check) -> str:
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            return await check()
    except TimeoutError:
        return f"no answer within {CHECK_SECONDS:g} s"
    except Exception as error:
        return f"check failed: {type(error).__name__}"


# --- the application ------------------------------------------------------------------------------------


def web_application(
    metrics: Metrics,
    readiness: Readiness,
    bolt: AsyncApp | None,
    alerts: Handler | None = None,  # alert webhook: see handlers/alert_intake.py
    *,
    signing_secret: str | None = None,
    limits: HttpLimits | None = None,
) -> web.Application:
    """`/healthz` and `/metrics`; `/slack/events` when Slack's requests come over HTTP (`bolt` given,
    with its `signing_secret`); `/alerts/azure-monitor` when `alerts` is given (`alert_route(...)`, only
    when PURVIEW_BOT_WEBHOOK_SECRET is set: the route is never served without its secret)."""
    rejections = RateLimitedLog(log)

    def refused_connection(reason: str, what: str) -> None:
        metrics.http_refused(reason)
        rejections.warning(reason, "web server: %s", what)

    def refused(request: web.BaseRequest, reason: str, what: str) -> None:
        metrics.http_refused(reason)
        rejections.warning(
            reason,
            "refused %s %s from %s: %s",
            printable(request.method),
            printable(request.path),
            printable(request.remote),
            what,
        )

    gate = ConnectionGate(limits or HttpLimits(), refused_connection)

    # (these two are not `answering`: a probe waiting on a slow check must not hold a slot against Slack)
    async def health(_: web.Request) -> web.Response:
        status, body = await readiness.health()
        return web.json_response(body, status=status)

    async def metrics_text(_: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = metrics.content_type
        return response

    app = web.Application()
    app[GATE] = gate
    app.router.add_get("/healthz", health)
    app.router.add_get("/metrics", metrics_text)
    if bolt is not None:
        if not signing_secret:
            raise ConfigError("serving /slack/events needs SLACK_SIGNING_SECRET")
        app.router.add_post(EVENTS_PATH, SlackEndpoint(bolt, signing_secret, gate, refused).handle)
    # --- alert webhook (handlers/alert_intake.py) ---
    if alerts is not None:
        app.router.add_post(ALERTS_PATH, within(alerts, gate.limits.read_seconds, refused))
    # --- end alert webhook ---
    return app


@asynccontextmanager
async def running(app: web.Application, host: str, port: int) -> AsyncIterator[str]:
    """The application started on host:port (0 = any free port); yields its base URL.

    Connections are accepted through the app's `ConnectionGate`, and aiohttp's keep-alive timer (armed
    from the moment a connection opens) closes one whose request headers are not in within the read
    timeout."""
    limit_library_logs()
    gate = app.get(GATE) or ConnectionGate(HttpLimits(), lambda reason, what: None)
    runner = web.AppRunner(
        app,
        access_log=None,
        keepalive_timeout=gate.limits.read_seconds,
        lingering_time=LINGER_SECONDS,
        shutdown_timeout=SHUTDOWN_SECONDS,
    )
    await runner.setup()
    listening: asyncio.Server | None = None
    try:
        assert runner.server is not None
        gate.attach(runner.server)
        loop = asyncio.get_running_loop()
        listening = await loop.create_server(gate, host, port, backlog=BACKLOG, reuse_address=True)
        bound = listening.sockets[0].getsockname()
        url_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        yield f"http://{url_host}:{bound[1]}"
    finally:
        if listening is not None:
            listening.close()
        await runner.cleanup()
        if listening is not None:
            await listening.wait_closed()


# --- serve ----------------------------------------------------------------------------------------------


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


class Stopping:
    """SIGINT / SIGTERM while serving: the first stops the server (`requested`); any later one skips the
    wait for reports in progress (`hurry`), and the unfinished ones are still edited to "interrupted"."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.hurry = asyncio.Event()

    def signal(self) -> None:
        if not self.requested.is_set():
            log.info("stopping: no new requests; reports in progress may finish (a second signal: stop now)")
            self.requested.set()
        elif not self.hurry.is_set():
            log.warning("second signal: not waiting for reports in progress")
            self.hurry.set()

    @contextmanager
    def handling_signals(self) -> Iterator[Stopping]:
        """SIGINT and SIGTERM call `signal()` until the block is left (the drain included)."""
        loop = asyncio.get_running_loop()
        handled = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.signal)
                handled.append(sig)
            except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
                pass
        try:
            yield self
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)


@asynccontextmanager
async def serve_http(
    settings: Settings, *, host: str = "127.0.0.1", port: int = 0, stopping: Stopping | None = None
) -> AsyncIterator[str]:
    """Azure clients, the Slack app and the web server, started; yields the base URL, closes on exit
    (after `PURVIEW_BOT_DRAIN_SECONDS` for reports in progress, or less once `stopping.hurry` is set)."""
    require_slack_settings(settings, socket_mode=False)
    metrics = Metrics()
    background = Background()
    identity = SlackIdentity(settings.slack_bot_token or "")
    async with azure_clients(settings, observer=metrics) as clients, serving_store(settings) as store:
        service = AzureDiagnosisService(clients, settings)
        bolt = build_slack_app(settings, service, metrics, background, store=store, identity=identity)
        readiness = Readiness(bolt.client, identity=identity)
        readiness.add_check("store", store_check(store))  # "degraded" while the database is away
        readiness.start()  # auth.test in the background: nobody waits for it
        readiness.azure_open = True
        try:
            # the scan-failure watcher (unless PURVIEW_BOT_WATCH_INTERVAL=0), also the webhook's intake
            async with watching(
                settings, clients=clients, service=service, client=bolt.client, metrics=metrics, store=store
            ) as watcher:
                alerts = alert_handler(settings, watcher, metrics, background, store)
                app = web_application(
                    metrics,
                    readiness,
                    bolt,
                    alerts,
                    signing_secret=settings.slack_signing_secret,
                    limits=HttpLimits.from_settings(settings),
                )
                async with running(app, host, port) as url:
                    log.info("purview-bot serving Slack on %s%s", url, EVENTS_PATH)
                    yield url
                    # stop taking requests first (leaving this block), then let work in progress finish
                await background.drain(settings.drain_seconds, skip=stopping.hurry if stopping else None)
        finally:
            readiness.azure_open = False
            await readiness.close()


async def serve_http_forever(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    """`purview-bot serve` in HTTP mode, until SIGINT or SIGTERM (a second one skips the drain's wait)."""
    stopping = Stopping()
    with stopping.handling_signals():
        async with serve_http(
            settings,
            host=settings.host if host is None else host,
            port=settings.port if port is None else port,
            stopping=stopping,
        ):
            await stopping.requested.wait()


async def run_socket_mode(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    """`purview-bot serve` in Socket Mode (SLACK_APP_TOKEN set): Slack's requests over a websocket the
    bot opens, so no public URL; the web server still answers `/healthz` and `/metrics`."""
    require_slack_settings(settings, socket_mode=True)
    metrics = Metrics()
    background = Background()
    identity = SlackIdentity(settings.slack_bot_token or "")
    stopping = Stopping()
    with stopping.handling_signals():
        async with azure_clients(settings, observer=metrics) as clients, serving_store(settings) as store:
            service = AzureDiagnosisService(clients, settings)
            bolt = build_slack_app(
                settings, service, metrics, background, socket_mode=True, store=store, identity=identity
            )
            handler = AsyncSocketModeHandler(bolt, settings.slack_app_token or "")
            readiness = Readiness(bolt.client, handler, identity=identity)
            readiness.add_check("store", store_check(store))  # "degraded" while the database is away
            readiness.start()
            readiness.azure_open = True
            async with (
                watching(
                    settings,
                    clients=clients,
                    service=service,
                    client=bolt.client,
                    metrics=metrics,
                    store=store,
                ) as watcher,
                running(
                    web_application(
                        metrics,
                        readiness,
                        None,
                        alert_handler(settings, watcher, metrics, background, store),
                        limits=HttpLimits.from_settings(settings),
                    ),
                    settings.host if host is None else host,
                    settings.port if port is None else port,
                ) as url,
            ):
                await handler.client.connect()  # type: ignore[no-untyped-call]
                log.info("purview-bot connected to Slack in Socket Mode; health and metrics on %s", url)
                try:
                    await stopping.requested.wait()
                finally:
                    await handler.client.close()  # type: ignore[no-untyped-call]
                    await background.drain(settings.drain_seconds, skip=stopping.hurry)
                    readiness.azure_open = False
                    await readiness.close()
