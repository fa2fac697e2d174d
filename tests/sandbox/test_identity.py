"""Entra ID stand-in: real azure-identity credentials get tokens that carry the requested audience."""

from __future__ import annotations

import aiohttp
import pytest
from azure.identity.aio import DefaultAzureCredential, EnvironmentCredential

from sandbox import Sandbox
from tests.sandbox.conftest import ARM, KEYVAULT, TENANT, claims_of


async def test_environment_credential_gets_token_with_audience(credential: EnvironmentCredential) -> None:
    token = await credential.get_token(ARM)
    assert claims_of(token.token)["aud"] == "https://management.azure.com"
    assert claims_of((await credential.get_token(KEYVAULT)).token)["aud"] == "https://vault.azure.net"


async def test_default_azure_credential_uses_only_the_environment(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in sb.env().items():
        monkeypatch.setenv(key, value)
    cred = DefaultAzureCredential(connection_verify=sb.ca_file)
    try:
        token = await cred.get_token("https://purview.azure.net/.default")
    finally:
        await cred.close()
    assert claims_of(token.token)["aud"] == "https://purview.azure.net"
    assert {r.host_area for r in sb.requests} == {"token"}
    assert all(r.path == f"/{TENANT}/oauth2/v2.0/token" for r in sb.requests)


async def test_token_endpoint_rejects_unknown_tenant_and_grant(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    form = {"client_id": "c", "client_secret": "s", "scope": ARM, "grant_type": "client_credentials"}
    async with http.post(f"{sb.url}/not-a-tenant/oauth2/v2.0/token", data=form) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"] == "invalid_request"
    async with http.post(
        f"{sb.url}/{TENANT}/oauth2/v2.0/token", data={**form, "grant_type": "password"}
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"] == "unsupported_grant_type"


async def test_token_response_shape(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    form = {"client_id": "c", "client_secret": "s", "scope": ARM, "grant_type": "client_credentials"}
    async with http.post(f"{sb.url}/{TENANT}/oauth2/v2.0/token", data=form) as resp:
        body = await resp.json()
    assert body.keys() == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599


async def test_discovery_documents(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{sb.url}/{TENANT}/v2.0/.well-known/openid-configuration") as resp:
        config = await resp.json()
    assert config["token_endpoint"] == f"{sb.url}/{TENANT}/oauth2/v2.0/token"
    async with http.get(f"{sb.url}/common/discovery/instance") as resp:
        assert resp.status == 200


async def test_env_points_everything_at_the_sandbox(sb: Sandbox) -> None:
    env = sb.env()
    assert env["AZURE_TENANT_ID"] == TENANT
    assert env["AZURE_AUTHORITY_HOST"] == sb.url
    assert env["AZURE_TOKEN_CREDENTIALS"] == "EnvironmentCredential"
    assert env["SSL_CERT_FILE"] == sb.ca_file
    assert env["PURVIEW_BOT_ARM_ENDPOINT"] == sb.url
    assert env["PURVIEW_BOT_PURVIEW_ENDPOINT"] == sb.url + "/purview/{account}"
    assert env["PURVIEW_BOT_GRAPH_ENDPOINT"] == sb.url + "/graph"
    assert env["PURVIEW_BOT_KEYVAULT_VERIFY_CHALLENGE"] == "false"
    assert env["PURVIEW_ACCOUNTS"] == "contoso-pv"
    assert env["AZURE_CLIENT_ID"] and env["AZURE_CLIENT_SECRET"]
    assert sb.url.startswith("https://127.0.0.1:")
    assert sb.accounts == ["contoso-pv"]
