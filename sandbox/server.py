"""The sandbox server: one HTTPS port on 127.0.0.1 answering as Entra ID, ARM, Key Vault, Purview and Graph.

Every request passes the same gate, in the order Azure applies it: latency, bearer token for the plane
(401 with the plane's error body and, for Key Vault, its challenge), injected faults, `api-version`, then
the route. Each request is recorded whatever its outcome.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shlex
import time
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any

from aiohttp import web

from sandbox import (
    routes_arm,
    routes_graph,
    routes_identity,
    routes_keyvault,
    routes_monitor,
    routes_purview,
)
from sandbox.auth import authorize
from sandbox.context import Context
from sandbox.errors import ApiError, error_response, fault_code
from sandbox.faults import FaultBook
from sandbox.recording import HostArea, RecordedRequest
from sandbox.tls import TlsMaterial, make_tls
from sandbox.tokens import TokenIssuer
from sandbox.world import FaultSpec, World

log = logging.getLogger(__name__)

CLIENT_ID = "5a4d1b8e-0000-4000-8000-5a4db0c1e7d1"
CLIENT_SECRET = "sandbox-client-secret"

_NEEDS_API_VERSION: tuple[HostArea, ...] = ("arm", "purview", "keyvault")
_TOKEN_PATH = re.compile(r"^/[^/]+/(oauth2/|v2\.0/\.well-known/|discovery/)", re.I)

Route = Callable[[Context, web.Request], Awaitable[web.Response]]


async def _arm(ctx: Context, request: web.Request) -> web.Response:
    """ARM; the Activity Log (`Microsoft.Insights/eventtypes/management/values`) has its own module."""
    if routes_monitor.matches(request.path):
        return await routes_monitor.handle(ctx, request)
    return await routes_arm.handle(ctx, request)


_ROUTES: dict[HostArea, Route] = {
    "token": routes_identity.handle,
    "arm": _arm,
    "purview": routes_purview.handle,
    "keyvault": routes_keyvault.handle,
    "graph": routes_graph.handle,
}


def host_area(path: str) -> HostArea:
    """Which Azure service a sandbox path stands for."""
    lower = path.lower()
    if lower.startswith("/purview/"):
        return "purview"
    if lower.startswith("/kv/"):
        return "keyvault"
    if lower.startswith("/graph/") or lower == "/graph":
        return "graph"
    if _TOKEN_PATH.match(path):
        return "token"
    return "arm"


class Sandbox:
    """A local stand-in for Azure serving one world; use `async with Sandbox(world) as sb:`."""

    def __init__(self, world: World, latency_ms: float = 0.0, *, port: int = 0) -> None:
        self.world = world
        self.latency_ms = latency_ms
        self.requests: list[RecordedRequest] = []
        self._port = port
        self._faults = FaultBook(world.faults)
        self._issuer = TokenIssuer()
        self._runner: web.AppRunner | None = None
        self._tls: TlsMaterial | None = None
        self._url: str | None = None
        self._context: Context | None = None

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the sandbox is already running")
        self._tls = make_tls()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self._port, ssl_context=self._tls.server_context)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            self._tls.remove()
            raise
        port = runner.addresses[0][1]
        self._url = f"https://127.0.0.1:{port}"
        self._context = Context(world=self.world, base_url=self._url, issuer=self._issuer)
        self._runner = runner

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tls is not None:
            self._tls.remove()
            self._tls = None

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- what clients need -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._url is None or self._runner is None:
            raise RuntimeError("the sandbox is not running: await start() first")
        return self._url

    @property
    def ca_file(self) -> str:
        if self._tls is None:
            raise RuntimeError("the sandbox is not running: await start() first")
        return str(self._tls.ca_file)

    @property
    def accounts(self) -> list[str]:
        return self.world.accounts

    def env(self) -> dict[str, str]:
        """The ordinary settings that point the product (and azure-identity) at this sandbox."""
        return {
            "AZURE_TENANT_ID": self.world.tenant_id,
            "AZURE_CLIENT_ID": CLIENT_ID,
            "AZURE_CLIENT_SECRET": CLIENT_SECRET,
            "AZURE_AUTHORITY_HOST": self.url,
            "AZURE_TOKEN_CREDENTIALS": "EnvironmentCredential",
            "SSL_CERT_FILE": self.ca_file,
            "PURVIEW_BOT_ARM_ENDPOINT": self.url,
            "PURVIEW_BOT_PURVIEW_ENDPOINT": self.url + "/purview/{account}",
            "PURVIEW_BOT_GRAPH_ENDPOINT": self.url + "/graph",
            "PURVIEW_BOT_KEYVAULT_VERIFY_CHALLENGE": "false",
            "PURVIEW_ACCOUNTS": ",".join(self.accounts),
        }

    def export_lines(self) -> list[str]:
        return [f"export {k}={shlex.quote(v)}" for k, v in self.env().items()]

    def clear_requests(self) -> None:
        self.requests.clear()

    def add_fault(self, fault: Mapping[str, Any] | FaultSpec) -> None:
        """Add a fault in the world file's format: `{path, status?, retryAfter?, times?, delayMs?, …}`."""
        self._faults.add(fault)

    def clear_faults(self) -> None:
        self._faults.clear()

    # --- the gate ----------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        area = host_area(request.path)
        ctx = self._context
        assert ctx is not None, "requests arrive only after start()"
        authorized = False
        faulted = False
        try:
            if self.latency_ms > 0:
                await asyncio.sleep(self.latency_ms / 1000)
            if area != "token":
                authorize(ctx, area, request.headers.get("Authorization", ""))
                authorized = True
            fault = self._faults.take(
                request.method, request.path, request.query_string, request.rel_url.raw_query_string
            )
            if fault is not None and fault.delay_ms > 0:
                await asyncio.sleep(fault.delay_ms / 1000)
            if fault is not None and fault.status is not None:
                faulted = True
                response: web.StreamResponse = _fault_response(area, fault, fault.status)
            else:
                if area in _NEEDS_API_VERSION and not request.query.get("api-version"):
                    raise ApiError(
                        400,
                        "MissingApiVersionParameter",
                        "The api-version query parameter (?api-version=) is required for all requests.",
                    )
                response = await _ROUTES[area](ctx, request)
        except ApiError as err:
            response = error_response(area, err)
        except Exception:
            log.exception("sandbox route failed for %s %s", request.method, request.path_qs)
            response = error_response(
                area, ApiError(500, fault_code(area, 500), "The sandbox failed to answer this request.")
            )
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                status=response.status,
                host_area=area,
                authorized=authorized,
                started=started,
                duration=time.monotonic() - started,
                secret_value=area == "keyvault" and routes_keyvault.reads_secret_value(request.path),
                faulted=faulted,
            )
        )
        return response


def _fault_response(area: HostArea, fault: FaultSpec, status: int) -> web.Response:
    headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
    code = fault.code or fault_code(area, status)
    return error_response(
        area,
        ApiError(
            status,
            code,
            f"Injected fault ({status}) from the sandbox world.",
            inner_code=fault.inner_code,
            headers=headers,
        ),
    )
