"""key-vault-secret: each link exists; the version Purview reads is present, enabled and within its dates."""

from __future__ import annotations

from typing import Any

import pytest

from checks import sections as s
from checks.catalogue import key_vault_secret
from checks.errors import GatewayError
from checks.gateways.keyvault import PERMISSION as KV_LIST_PERMISSION
from checks.model import Finding, Status
from tests.checks import kv_worlds as kv
from tests.checks import worlds as w
from tests.fakes import FakeWorld


async def _run(world: dict[str, Any], fake: FakeWorld | None = None) -> list[Finding]:
    fake = fake or FakeWorld(world)
    return await key_vault_secret.run(await fake.target(kv.SOURCE))


@pytest.mark.parametrize("shape", ["kind", "properties"])
async def test_latest_enabled_version_passes_in_both_credential_shapes(shape: str) -> None:
    [f] = await _run(kv.kv_world(shape=shape, versions=[kv.version("v1", exp="2027-06-01T00:00:00Z")]))
    assert f.status is Status.PASS and f.section == s.KEY_VAULT_SECRET and f.scan == kv.SCAN
    assert kv.SECRET in f.title and kv.VAULT in f.title
    assert "a person must check" in f.detail
    assert f"az keyvault secret show --vault-name {kv.VAULT} --name {kv.SECRET} --version v1" in f.detail
    assert f.evidence["credentialType"] == "SqlAuth"
    assert f.evidence["vaultId"] == kv.VAULT_ID and f.evidence["field"] == "password"
    assert f.evidence["chosenVersion"]["version"] == "v1"
    assert f.evidence["chosenVersion"]["expires"] == "2027-06-01T00:00:00Z"


async def test_latest_is_the_newest_created_not_the_first_listed() -> None:
    versions = [
        kv.version("new", created="2026-11-01T00:00:00Z"),
        kv.version("old", created="2026-01-01T00:00:00Z", exp="2026-02-01T00:00:00Z"),
    ]
    [f] = await _run(kv.kv_world(versions=versions))
    assert f.status is Status.PASS and f.evidence["chosenVersion"]["version"] == "new"


async def test_latest_disabled_fails_even_with_an_older_enabled_version() -> None:
    versions = [
        kv.version("old", created="2026-01-01T00:00:00Z"),
        kv.version("new", enabled=False, created="2026-11-01T00:00:00Z"),
    ]
    [f] = await _run(kv.kv_world(versions=versions))
    assert f.status is Status.FAIL and "version new is disabled" in f.title
    assert f.fix == [
        f"az keyvault secret set-attributes --vault-name {kv.VAULT} --name {kv.SECRET} --version new "
        "--enabled true"
    ]
    assert f.evidence["problems"] == ["version new is disabled"]


async def test_pinned_version_matches_case_insensitively() -> None:
    versions = [
        kv.version("abc123", created="2026-01-01T00:00:00Z"),
        kv.version("zzz", created="2026-11-01T00:00:00Z"),
    ]
    [f] = await _run(kv.kv_world(versions=versions, pinned="ABC123"))
    assert f.status is Status.PASS and f.evidence["chosenVersion"]["version"] == "abc123"
    assert "pinned version abc123" in f.detail


async def test_missing_pinned_version_fails_with_listing_fix() -> None:
    [f] = await _run(kv.kv_world(versions=[kv.version("v1")], pinned="v0"))
    assert f.status is Status.FAIL and "has no version v0" in f.title
    assert f.fix[0] == f"az keyvault secret list-versions --vault-name {kv.VAULT} --name {kv.SECRET} -o table"
    assert kv.CREDENTIAL in f.fix[1]
    assert f.evidence["secretVersion"] == "v0" and f.evidence["versions"] == 1


async def test_disabled_pinned_version_fails_and_points_to_the_credential() -> None:
    [f] = await _run(kv.kv_world(versions=[kv.version("v1", enabled=False)], pinned="v1"))
    assert f.status is Status.FAIL
    assert any(kv.CREDENTIAL in line for line in f.fix)


async def test_expired_version_fails() -> None:
    [f] = await _run(kv.kv_world(versions=[kv.version("v1", exp="2026-11-27T00:00:00Z")]))
    assert f.status is Status.FAIL and "expired on 2026-11-27 00:00 UTC" in f.title
    assert f"az keyvault secret set --vault-name {kv.VAULT} --name {kv.SECRET} --value '<value>'" in f.fix
    assert "a person must check" in f.detail


async def test_not_yet_valid_version_fails() -> None:
    [f] = await _run(kv.kv_world(versions=[kv.version("v1", nbf="2026-12-01T00:00:00Z")]))
    assert f.status is Status.FAIL and "not valid before 2026-12-01 00:00 UTC" in f.title
    assert f.fix == [
        f"az keyvault secret set-attributes --vault-name {kv.VAULT} --name {kv.SECRET} --version v1 "
        "--not-before 2026-11-28T08:00:00Z"
    ]


@pytest.mark.parametrize(
    ("exp", "status"), [("2026-12-10T00:00:00Z", Status.WARN), ("2026-12-20T00:00:00Z", Status.PASS)]
)
async def test_expiring_within_14_days_warns(exp: str, status: Status) -> None:
    [f] = await _run(kv.kv_world(versions=[kv.version("v1", exp=exp)]))
    assert f.status is status


async def test_secret_not_found_fails_naming_secret_and_vault() -> None:
    world = kv.kv_world()
    world["keyVaults"][kv.VAULT]["secrets"] = {}
    [f] = await _run(world)
    assert f.status is Status.FAIL
    assert f.title == f"Secret {kv.SECRET} not found in Key Vault {kv.VAULT}"
    assert f"az keyvault secret set --vault-name {kv.VAULT} --name {kv.SECRET} --value '<value>'" in f.fix


async def test_forbidden_versions_is_unknown_naming_call_and_permission() -> None:
    fake = FakeWorld(kv.kv_world())
    call = f"list versions of secret {kv.SECRET} in {kv.VAULT_URI.rstrip('/')}"
    fake.fail["kv.versions"] = GatewayError(
        call, status=403, code="ForbiddenByRbac", permission=KV_LIST_PERMISSION
    )
    [f] = await _run({}, fake)
    assert f.status is Status.UNKNOWN and f.scan == kv.SCAN
    assert call in f.detail and KV_LIST_PERMISSION in f.detail
    assert f.evidence["error"]["status"] == 403 and f.evidence["vault"] == kv.VAULT


async def test_forbidden_without_a_named_permission_still_names_secrets_list() -> None:
    fake = FakeWorld(kv.kv_world())
    fake.fail["kv.versions"] = GatewayError("list versions", status=403, code="Forbidden")
    [f] = await _run({}, fake)
    assert f.status is Status.UNKNOWN and "List on secrets" in f.detail and kv.VAULT in f.detail


async def test_msi_scan_is_skipped_once() -> None:
    world = kv.kv_world(scans=[w.scan("weekly", "AzureSqlDatabaseMsi")])
    fake = FakeWorld(world)
    [f] = await _run(world, fake)
    assert f.status is Status.SKIPPED and f.scan == "weekly"
    assert f.detail == "scan uses Purview's managed identity: no secret involved"
    assert not any(c.startswith(("kv.", "arm.list")) for c in fake.calls)


async def test_credential_without_key_vault_secret_is_skipped() -> None:
    world = kv.kv_world(scans=[kv.secret_scan(credential="uami")])
    w.pv(world)["credentials"].append(w.credential("uami", "ManagedIdentity", {"principalId": w.UAMI_OID}))
    [f] = await _run(world)
    assert f.status is Status.SKIPPED and "uami holds no Key Vault secret" in f.detail


async def test_missing_credential_fails() -> None:
    world = kv.kv_world(scans=[kv.secret_scan(credential="gone")])
    [f] = await _run(world)
    assert f.status is Status.FAIL and f.title == f"Scan {kv.SCAN}: credential gone not found"
    assert f.evidence["link"] == "credential"


async def test_missing_key_vault_connection_fails() -> None:
    world = kv.kv_world()
    w.pv(world)["azureKeyVaults"] = []
    [f] = await _run(world)
    assert f.status is Status.FAIL and f"key vault connection {kv.CONNECTION} not found" in f.title
    assert "Manage Key Vault connections" in f.fix[0]


async def test_vault_not_found_by_uri_fails() -> None:
    world = kv.kv_world()
    world["resources"] = [r for r in world["resources"] if r["type"] != "Microsoft.KeyVault/vaults"]
    [f] = await _run(world)
    assert f.status is Status.FAIL and f.evidence["link"] == "vault"
    assert kv.VAULT_URI in f.detail
