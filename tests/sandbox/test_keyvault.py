"""Key Vault stand-in: the 401 challenge, secret version properties through the real SDK, paging, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.identity.aio import EnvironmentCredential
from azure.keyvault.secrets.aio import SecretClient

from checks.gateways.keyvault import KeyVaultGateway
from sandbox import Sandbox, load_world
from sandbox.world import WorldError
from tests.sandbox.conftest import ARM, KEYVAULT, TENANT, Caller

V = {"api-version": "7.5"}
NEWEST = "3c1f0e2a9b8d4c7e8f6a5b4c3d2e1f00"


def secret_client(sb: Sandbox, cred: EnvironmentCredential) -> SecretClient:
    return SecretClient(
        f"{sb.url}/kv/kv-sales/", cred, verify_challenge_resource=False, connection_verify=sb.ca_file
    )


async def test_challenge_without_token(sb: Sandbox, call: Caller) -> None:
    status, body, headers = await call("GET", "/kv/kv-sales/secrets/sql-password/versions", params=V)
    assert status == 401
    assert body["error"]["code"] == "Unauthorized"
    assert headers["WWW-Authenticate"] == (
        f'Bearer authorization="{sb.url}/{TENANT}", resource="https://vault.azure.net"'
    )
    status, body, _ = await call("GET", "/kv/kv-sales/secrets/sql-password/versions", scope=ARM, params=V)
    assert status == 401 and "AKV10022" in body["error"]["message"]


async def test_sdk_lists_versions_after_the_challenge(sb: Sandbox, credential: EnvironmentCredential) -> None:
    async with secret_client(sb, credential) as client:
        versions = [v async for v in client.list_properties_of_secret_versions("sql-password")]
    assert [v.version for v in versions] == [
        NEWEST,
        "2b0e9d1f8a7c4b6d9e5f4a3b2c1d0e00",
        "1a9d8c0e7f6b4a5c8d4e3f2a1b0c9d00",
    ]
    newest = versions[0]
    assert newest.name == "sql-password"
    assert newest.vault_url == "https://kv-sales.vault.azure.net"  # ids keep the vault's real host
    assert newest.enabled is True
    assert newest.expires_on == datetime(2026, 12, 5, tzinfo=UTC)
    assert newest.created_on == datetime(2026, 11, 1, tzinfo=UTC)
    assert newest.content_type == "text/plain"
    assert newest.recovery_level == "Recoverable+Purgeable"
    assert versions[1].not_before == datetime.fromtimestamp(1760000000, UTC)
    assert versions[2].enabled is False
    kv = [r for r in sb.requests if r.host_area == "keyvault"]
    assert [(r.status, r.authorized) for r in kv] == [(401, False), (200, True)]
    assert not any(r.secret_value for r in sb.requests)


async def test_sdk_follows_next_links(paged_sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in paged_sb.env().items():
        monkeypatch.setenv(key, value)
    async with (
        EnvironmentCredential(connection_verify=paged_sb.ca_file) as cred,
        secret_client(paged_sb, cred) as client,
    ):
        versions = [v.version async for v in client.list_properties_of_secret_versions("sql-password")]
        secrets = [s.name async for s in client.list_properties_of_secrets()]
    assert len(versions) == 3 == len(set(versions))
    assert sorted(secrets) == ["sql-password", "storage-key"]
    pages = [r for r in paged_sb.requests if r.path.endswith("/versions") and r.status == 200]
    assert len(pages) == 3
    assert [r.query.get("$skiptoken") for r in pages] == [None, "1", "2"]


async def test_unknown_secret_is_secret_not_found(sb: Sandbox, credential: EnvironmentCredential) -> None:
    async with secret_client(sb, credential) as client:
        with pytest.raises(ResourceNotFoundError) as err:
            [v async for v in client.list_properties_of_secret_versions("nope")]
    assert err.value.error is not None and err.value.error.code == "SecretNotFound"
    assert "A secret with (name/id) nope was not found in this key vault" in str(err.value.message)


async def test_reading_a_value_is_recorded(sb: Sandbox, credential: EnvironmentCredential) -> None:
    async with secret_client(sb, credential) as client:
        latest = await client.get_secret("sql-password")
        pinned = await client.get_secret("sql-password", "2b0e9d1f8a7c4b6d9e5f4a3b2c1d0e00")
    assert latest.value == "sandbox-value" and latest.properties.version == NEWEST
    assert pinned.properties.version == "2b0e9d1f8a7c4b6d9e5f4a3b2c1d0e00"
    reads = [r for r in sb.requests if r.secret_value]
    assert len(reads) == 3  # the unauthenticated first attempt counts too
    assert all(r.host_area == "keyvault" for r in reads)


async def test_raw_versions_page_and_missing_api_version(sb: Sandbox, call: Caller) -> None:
    status, body, _ = await call(
        "GET", "/kv/kv-sales/secrets/sql-password/versions", scope=KEYVAULT, params={**V, "maxresults": "1"}
    )
    assert status == 200
    assert len(body["value"]) == 1
    assert body["value"][0]["id"] == f"https://kv-sales.vault.azure.net/secrets/sql-password/{NEWEST}"
    assert body["nextLink"].startswith(f"{sb.url}/kv/kv-sales/secrets/sql-password/versions?")
    assert "api-version=7.5" in body["nextLink"] and "maxresults=1" in body["nextLink"]
    status, body, _ = await call("GET", "/kv/kv-sales/secrets/sql-password/versions", scope=KEYVAULT)
    assert (status, body["error"]["code"]) == (400, "MissingApiVersionParameter")


DELETED = "2026-11-20T10:00:00Z"


def _with_deleted_secret(world_data: dict[str, Any]) -> dict[str, Any]:
    """kv-sales with `old-password` soft-deleted on 20 Nov 2026 (every version carries the date)."""
    secrets = world_data["keyVaults"]["kv-sales"]["secrets"]
    secrets["old-password"] = [
        {"version": "9f0e", "attributes": {"created": "2026-01-01T00:00:00Z"}, "deletedDate": DELETED}
    ]
    return world_data


async def test_soft_deleted_secret_is_gone_from_secrets_and_listed_as_deleted(
    world_data: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Sandbox(load_world(_with_deleted_secret(world_data), rebase_to=None)) as box:
        for key, value in box.env().items():
            monkeypatch.setenv(key, value)
        async with (
            EnvironmentCredential(connection_verify=box.ca_file) as cred,
            secret_client(box, cred) as client,
        ):
            with pytest.raises(ResourceNotFoundError) as err:
                [v async for v in client.list_properties_of_secret_versions("old-password")]
            assert err.value.error is not None and err.value.error.code == "SecretNotFound"
            assert "old-password" not in [s.name async for s in client.list_properties_of_secrets()]
            deleted = [d async for d in client.list_deleted_secrets()]
    [item] = deleted
    assert item.name == "old-password" and item.deleted_date == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert item.scheduled_purge_date == datetime(2027, 2, 18, 10, tzinfo=UTC)  # + recoverableDays (90)
    assert item.recovery_id == "https://kv-sales.vault.azure.net/deletedsecrets/old-password"
    assert not any(r.secret_value for r in box.requests)


async def test_the_gateway_lists_deleted_secrets_without_values(
    world_data: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Sandbox(load_world(_with_deleted_secret(world_data), rebase_to=None)) as box:
        for key, value in box.env().items():
            monkeypatch.setenv(key, value)
        async with EnvironmentCredential(connection_verify=box.ca_file) as cred:
            gateway = KeyVaultGateway(
                cred,
                verify_challenge=False,
                call_timeout=10,
                client_options=lambda: {"connection_verify": box.ca_file},
            )
            try:
                found = await gateway.deleted_secrets(f"{box.url}/kv/kv-sales/")
            finally:
                await gateway.close()
    assert found == [
        {
            "name": "old-password",
            "recoveryId": "https://kv-sales.vault.azure.net/deletedsecrets/old-password",
            "deletedDate": DELETED,
            "scheduledPurgeDate": "2027-02-18T10:00:00Z",
        }
    ]
    paths = {r.path for r in box.requests if r.host_area == "keyvault"}
    assert paths == {"/kv/kv-sales/deletedsecrets"}


def test_a_secret_is_soft_deleted_with_all_its_versions(world_data: dict[str, Any]) -> None:
    secrets = world_data["keyVaults"]["kv-sales"]["secrets"]
    secrets["sql-password"][0]["deletedDate"] = DELETED
    with pytest.raises(WorldError, match="soft-deleted with all its versions"):
        load_world(world_data, rebase_to=None)
