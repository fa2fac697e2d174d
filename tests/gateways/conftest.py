"""A programmable HTTPS server on 127.0.0.1 (trustme CA) and clients on it through the real pipelines."""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp import web
from azure.core.credentials import AccessToken

from checks.gateways.endpoints import AzureEndpoints
from checks.gateways.factory import AzureClients
from checks.gateways.pipeline import RetrySettings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TOKEN = "fake-token-not-a-secret"
FAST_RETRY = RetrySettings(total=3, backoff_factor=0.01, backoff_max=0.05)


class FakeCredential:
    """An `AsyncTokenCredential` with a fixed token; records the scopes asked for."""

    def __init__(self, fail: bool = False) -> None:
        self.scopes: list[tuple[str, ...]] = []
        self.fail = fail
        self.closed = False

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        if self.fail:
            raise RuntimeError("EnvironmentCredential: AZURE_CLIENT_ID is not set.\nsecond line")
        return AccessToken(TOKEN, int(time.time()) + 3600)

    async def close(self) -> None:
        self.closed = True

    async def __aenter__(self) -> FakeCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    authorized: bool


@dataclass
class FakeAzure:
    """Routes by (method, path); unrouted requests answer 599 so a test sees what it forgot."""

    url: str = ""
    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def on(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler

    def json(self, method: str, path: str, body: Any, status: int = 200) -> None:
        async def answer(_: web.Request) -> web.StreamResponse:
            return web.json_response(body, status=status)

        self.on(method, path, answer)

    def vault(self, path: str, *bodies: Any, status: int = 200) -> None:
        """Key Vault's protocol: a request without a token gets 401 and the challenge naming the resource.

        With a token, the bodies are served in turn (pages); the last one repeats.
        """
        queue = list(bodies)

        async def answer(request: web.Request) -> web.StreamResponse:
            if "Authorization" not in request.headers:
                challenge = (
                    'Bearer authorization="https://login.microsoftonline.com/00000000-0000-0000-0000-00000000aaaa",'
                    ' resource="https://vault.azure.net"'
                )
                return web.json_response(
                    {
                        "error": {
                            "code": "Unauthorized",
                            "message": "AKV10000: Request is missing a Bearer token.",
                        }
                    },
                    status=401,
                    headers={"WWW-Authenticate": challenge},
                )
            body = queue.pop(0) if len(queue) > 1 else queue[0]
            return web.json_response(body, status=status)

        self.on("GET", path, answer)

    def calls(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        self.seen.append(Seen(request.method, request.path, dict(request.query), auth == f"Bearer {TOKEN}"))
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            return web.json_response({"error": {"code": "NoRoute", "message": request.path}}, status=599)
        return await handler(request)


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def fake(ca: trustme.CA) -> AsyncIterator[FakeAzure]:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    azure = FakeAzure()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", azure.dispatch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    port = runner.addresses[0][1]
    azure.url = f"https://127.0.0.1:{port}"
    yield azure
    await runner.cleanup()


@pytest.fixture
async def session(ca: trustme.CA) -> AsyncIterator[aiohttp.ClientSession]:
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ctx)) as s:
        yield s


@pytest.fixture
def credential() -> FakeCredential:
    return FakeCredential()


@pytest.fixture
def failing_credential() -> FakeCredential:
    return FakeCredential(fail=True)


def endpoints_for(url: str, call_timeout: float = 5.0) -> AzureEndpoints:
    return AzureEndpoints(
        arm_url=url,
        arm_scope="https://management.azure.com/.default",
        purview_url_template=url + "/purview/{account}",
        purview_scope="https://purview.azure.net/.default",
        graph_url=url + "/graph",
        graph_scope="https://graph.microsoft.com/.default",
        keyvault_verify_challenge=False,
        call_timeout=call_timeout,
    )


@pytest.fixture
async def make_clients(
    fake: FakeAzure, credential: FakeCredential, session: aiohttp.ClientSession
) -> AsyncIterator[Callable[..., Awaitable[AzureClients]]]:
    """`await make_clients(call_timeout=…, cred=…)`: clients on the fake server, closed after the test."""
    opened: list[AzureClients] = []

    async def make(call_timeout: float = 5.0, cred: Any = None) -> AzureClients:
        azure = await AzureClients.open(
            endpoints_for(fake.url, call_timeout), cred or credential, session, FAST_RETRY
        )
        opened.append(azure)
        return azure

    yield make
    for azure in opened:
        await azure.close()


@pytest.fixture
async def clients(make_clients: Callable[..., Awaitable[AzureClients]]) -> AzureClients:
    return await make_clients()
