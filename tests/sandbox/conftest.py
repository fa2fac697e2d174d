"""Fixtures: a sandbox on the minimal world, a raw HTTPS client trusting its CA, tokens, credentials."""

from __future__ import annotations

import base64
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from azure.identity.aio import ClientSecretCredential, EnvironmentCredential

from checks.gateways.endpoints import AzureEndpoints
from checks.gateways.factory import AzureClients
from checks.gateways.pipeline import RetrySettings
from sandbox import Sandbox, load_world

REPO = Path(__file__).resolve().parents[2]
WORLD_FILE = REPO / "tests" / "worlds" / "minimal.yaml"

TENANT = "00000000-0000-0000-0000-00000000aaaa"
SUB = "11111111-1111-1111-1111-111111111111"
RG_DATA = f"/subscriptions/{SUB}/resourceGroups/rg-data"
STORAGE = f"{RG_DATA}/providers/Microsoft.Storage/storageAccounts/salesadls"
ARCHIVE = f"{RG_DATA}/providers/Microsoft.Storage/storageAccounts/archive"
SQL_SERVER = f"{RG_DATA}/providers/Microsoft.Sql/servers/sales-sql"
SQL_DB = f"{SQL_SERVER}/databases/orders"
VAULT = f"/subscriptions/{SUB}/resourceGroups/rg-sec/providers/Microsoft.KeyVault/vaults/kv-sales"
MANAGED_STORAGE = (
    f"/subscriptions/{SUB}/resourceGroups/rg-pv-managed/providers/Microsoft.Storage/storageAccounts/"
    + ("scanwesteurope1")
)
PV_MSI = "aaaaaaaa-0000-0000-0000-000000000001"
SCANNER_APP_ID = "bbbbbbbb-0000-0000-0000-0000000000b2"
ALICE = "aaaaaaaa-0000-0000-0000-000000000003"
GROUP_OUTER = "aaaaaaaa-0000-0000-0000-000000000005"
BOB = "aaaaaaaa-0000-0000-0000-000000000006"

ARM = "https://management.azure.com/.default"
PURVIEW = "https://purview.azure.net/.default"
GRAPH = "https://graph.microsoft.com/.default"
KEYVAULT = "https://vault.azure.net/.default"

Json = dict[str, Any]


@pytest.fixture
def world_data() -> Json:
    """The minimal world as a mapping, for tests that tweak it (page size, faults) before loading."""
    data: Json = yaml.safe_load(WORLD_FILE.read_text(encoding="utf-8"))
    return data


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    """The minimal world as written (not rebased: its dates are the file's, which the tests assert)."""
    async with Sandbox(load_world(WORLD_FILE, rebase_to=None)) as sandbox:
        yield sandbox


@pytest.fixture
async def paged_sb(world_data: Json) -> AsyncIterator[Sandbox]:
    """The minimal world with one item per page, so every list pages."""
    async with Sandbox(load_world({**world_data, "pageSize": 1}, rebase_to=None)) as sandbox:
        yield sandbox


def client_session(sandbox: Sandbox) -> aiohttp.ClientSession:
    context = ssl.create_default_context(cafile=sandbox.ca_file)
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))


@pytest.fixture
async def http(sb: Sandbox) -> AsyncIterator[aiohttp.ClientSession]:
    async with client_session(sb) as session:
        yield session


async def get_token(sandbox: Sandbox, session: aiohttp.ClientSession, scope: str) -> str:
    form = {"client_id": "test", "client_secret": "s", "scope": scope, "grant_type": "client_credentials"}
    async with session.post(f"{sandbox.url}/{TENANT}/oauth2/v2.0/token", data=form) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    token: str = body["access_token"]
    return token


def claims_of(token: str) -> Json:
    payload = token.split(".")[1]
    claims: Json = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


Caller = Callable[..., Awaitable[tuple[int, Json, Any]]]


@pytest.fixture
def call(sb: Sandbox, http: aiohttp.ClientSession) -> Caller:
    """`await call("GET", path, scope=ARM, params={...})` → (status, body, headers); absolute URLs too."""
    tokens: dict[str, str] = {}

    async def _call(
        method: str, path: str, *, scope: str | None = None, params: dict[str, str] | None = None
    ) -> tuple[int, Json, Any]:
        headers = {}
        if scope is not None:
            if scope not in tokens:
                tokens[scope] = await get_token(sb, http, scope)
            headers["Authorization"] = f"Bearer {tokens[scope]}"
        url = path if path.startswith("https://") else sb.url + path
        async with http.request(method, url, headers=headers, params=params) as resp:
            body = await resp.json(content_type=None) if await resp.read() else {}
            return resp.status, body, resp.headers

    return _call


@pytest.fixture
async def credential(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[EnvironmentCredential]:
    """The real async EnvironmentCredential, configured only by `sb.env()` (CA via connection_verify)."""
    for key, value in sb.env().items():
        monkeypatch.setenv(key, value)
    cred = EnvironmentCredential(connection_verify=sb.ca_file)
    yield cred
    await cred.close()


@contextlib.asynccontextmanager
async def product_clients(sandbox: Sandbox) -> AsyncIterator[AzureClients]:
    """The product's own Azure clients (ARM, Purview, Graph, Key Vault) pointed at `sandbox`, no retries."""
    endpoints = AzureEndpoints(
        arm_url=sandbox.url,
        arm_scope=ARM,
        purview_url_template=sandbox.url + "/purview/{account}",
        purview_scope=PURVIEW,
        graph_url=sandbox.url + "/graph",
        graph_scope=GRAPH,
        keyvault_verify_challenge=False,
        call_timeout=10,
    )
    env = sandbox.env()
    async with (
        client_session(sandbox) as http,
        ClientSecretCredential(
            env["AZURE_TENANT_ID"],
            env["AZURE_CLIENT_ID"],
            env["AZURE_CLIENT_SECRET"],
            authority=sandbox.url,
            connection_verify=sandbox.ca_file,
        ) as cred,
    ):
        opened = await AzureClients.open(endpoints, cred, http, RetrySettings(total=0))
        try:
            yield opened
        finally:
            await opened.close()
