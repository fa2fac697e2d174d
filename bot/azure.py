"""Wiring of the Azure side: one aiohttp session, one credential, the gateways, for the process."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from azure.core.exceptions import AzureError, ClientAuthenticationError
from azure.core.pipeline.transport import AioHttpTransport
from azure.identity.aio import DefaultAzureCredential

from bot.settings import Settings
from checks.gateways.factory import AzureClients
from checks.gateways.pipeline import CallObserver

CREDENTIAL_HELP = (
    "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (a service principal), "
    "run where a managed identity is available, or sign in with `az login`"
)


class ConfigError(Exception):
    """A setting is missing or wrong: the message is one sentence saying what to set."""


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """Trust the system store, plus `SSL_CERT_FILE` when set (read now, not at aiohttp's import time)."""
    context = ssl.create_default_context()
    if settings.ssl_cert_file:
        try:
            context.load_verify_locations(cafile=settings.ssl_cert_file)
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(f"SSL_CERT_FILE={settings.ssl_cert_file} cannot be read: {error}") from error
    return context


@asynccontextmanager
async def azure_clients(
    settings: Settings, *, observer: CallObserver | None = None
) -> AsyncIterator[AzureClients]:
    """Everything that talks to Azure, opened once and closed on exit; fails early on a bad credential.

    `observer` (the bot's metrics) hears every HTTP request the gateways make.
    """
    try:
        endpoints = settings.endpoints()
    except ValueError as error:
        raise ConfigError(f"PURVIEW_BOT_CLOUD: {error}") from error
    connector = aiohttp.TCPConnector(ssl=ssl_context(settings), limit=64, limit_per_host=16)
    async with aiohttp.ClientSession(connector=connector) as session:
        credential = DefaultAzureCredential(transport=AioHttpTransport(session=session, session_owner=False))
        try:
            await _probe(credential, endpoints.arm_scope)
            clients = await AzureClients.open(endpoints, credential, session, observer=observer)
            try:
                yield clients
            finally:
                await clients.close()
        finally:
            await credential.close()


async def _probe(credential: DefaultAzureCredential, scope: str) -> None:
    """Get one token up front, so a missing credential is one clear sentence rather than nine unknowns."""
    try:
        await credential.get_token(scope)
    except ClientAuthenticationError as error:
        first = str(error.message or error).strip().splitlines()[0][:300]
        raise ConfigError(f"No usable Azure credential ({first}); {CREDENTIAL_HELP}.") from error
    except AzureError as error:  # the token endpoint unreachable, TLS refused…
        first = (str(error.message or error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise ConfigError(
            f"Could not get an Azure token ({first}); check AZURE_AUTHORITY_HOST and the network."
        ) from error
