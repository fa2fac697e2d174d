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
    # a person checks the value with Test connection: no advice prints it
    assert "Test connection" in f.detail and "version v1" in f.detail and "--query value" not in f.detail
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
    assert f.evidence["blocksEveryRun"] is True
    assert f.fix[0] == f"az keyvault secret list-versions --vault-name {kv.VAULT} --name {kv.SECRET} -o table"
    assert kv.CREDENTIAL in f.fix[1]
    assert f.evidence["secretVersion"] == "v0" and f.evidence["versions"] == 1


async def test_disabled_pinned_version_fails_and_points_to_the_credential() -> None:
    [f] = await _run(kv.kv_world(versions=[kv.version("v1", enabled=False)], pinned="v1"))
    assert f.status is Status.FAIL
    assert any(kv.CREDENTIAL in line for line in f.fix)


LOGIN_FAILED = "Login failed for user 'scanner'. (Microsoft SQL Server, Error: 18456)"


def _failed(message: str, end: str = "2026-11-27T07:00:00Z") -> dict[str, Any]:
    return w.scan_run("Failed", end, error_message=message)


async def test_expired_version_warns_because_key_vault_still_serves_it() -> None:
    fake = FakeWorld(kv.kv_world(versions=[kv.version("v1", exp="2026-11-27T00:00:00Z")]))
    [f] = await _run({}, fake)
    assert f.status is Status.WARN and "expired on 2026-11-27 00:00 UTC" in f.title
    assert key_vault_secret.DATES_DOC in f.detail and "did not fail" in f.detail
    assert (
        f"az keyvault secret set \\\n  --vault-name {kv.VAULT} \\\n  --name {kv.SECRET} \\\n  --value"
        in f.fix[0]
    )
    assert "--expires" in f.fix[2] and "a person must check" in f.detail
    assert "causeSince" not in f.evidence and "blocksEveryRun" not in f.evidence
    assert fake.calls[f"purview.runs:{kv.SOURCE}/{kv.SCAN}"] == 1  # the runs decide


async def test_expired_version_fails_when_the_newest_run_says_the_source_refused_it() -> None:
    runs = {kv.SCAN: [_failed(LOGIN_FAILED), w.scan_run("Succeeded", "2026-11-20T00:00:00Z")]}
    world = kv.kv_world(versions=[kv.version("v1", exp="2026-11-27T00:00:00Z")], runs=runs)
    [f] = await _run(world)
    assert f.status is Status.FAIL and f.title.endswith("and the source refuses its value")
    assert f.evidence["refusedByRun"]["reason"] == "SQL login refused"
    assert f.evidence["causeSince"] == "2026-11-27T00:00:00Z"
    assert "“Login failed for user”" in f.detail
    [step] = f.fix  # the value asked for with `read -rs`: never on the screen or in the command line
    assert step.startswith("read -rsp 'New value: ' VALUE\naz keyvault secret set \\\n")
    assert f"--vault-name {kv.VAULT}" in step and f"--name {kv.SECRET}" in step
    assert '--value "$VALUE"' in step and step.endswith("--query attributes")


@pytest.mark.parametrize(
    "runs",
    [
        [w.scan_run("Succeeded", "2026-11-27T09:00:00Z"), _failed(LOGIN_FAILED, "2026-11-26T00:00:00Z")],
        [_failed("Login failed for user '<token-identified principal>'. Error 18456")],
        [
            _failed(
                "Login failed for user 'scanner'. Reason: Azure Active Directory only authentication "
                "is enabled."
            )
        ],
        [_failed("Failed to connect: the self-hosted integration runtime is offline")],
    ],
    ids=["newest-run-succeeded", "entra-identity", "entra-only-server", "other-cause"],
)
async def test_expired_version_stays_a_warning_without_a_refusal(runs: list[dict[str, Any]]) -> None:
    world = kv.kv_world(versions=[kv.version("v1", exp="2026-11-27T00:00:00Z")], runs={kv.SCAN: runs})
    [f] = await _run(world)
    assert f.status is Status.WARN and "refusedByRun" not in f.evidence


async def test_not_yet_valid_version_warns_and_a_refused_secret_fails() -> None:
    versions = [kv.version("v1", nbf="2026-12-01T00:00:00Z")]
    [f] = await _run(kv.kv_world(versions=versions))
    assert f.status is Status.WARN and "not valid before 2026-12-01 00:00 UTC" in f.title
    assert f.fix == [
        f"az keyvault secret set-attributes --vault-name {kv.VAULT} --name {kv.SECRET} --version v1 "
        "--not-before 2026-11-28T08:00:00Z"
    ]
    refused = {kv.SCAN: [_failed("AADSTS7000215: Invalid client secret provided.")]}
    [f] = await _run(kv.kv_world(versions=versions, runs=refused))
    assert f.status is Status.FAIL and f.evidence["refusedByRun"]["matched"] == "AADSTS7000215"


async def test_expiring_soon_is_not_escalated_by_a_refusal_and_reads_no_runs() -> None:
    world = kv.kv_world(
        versions=[kv.version("v1", exp="2026-12-10T00:00:00Z")], runs={kv.SCAN: [_failed(LOGIN_FAILED)]}
    )
    fake = FakeWorld(world)
    [f] = await _run({}, fake)
    assert f.status is Status.WARN and not any(c.startswith("purview.runs") for c in fake.calls)


async def test_unreadable_runs_leave_the_date_a_warning_that_says_so() -> None:
    fake = FakeWorld(kv.kv_world(versions=[kv.version("v1", exp="2026-11-27T00:00:00Z")]))
    fake.fail["purview.runs"] = GatewayError("list Purview runs", status=403, permission="Data Reader")
    [f] = await _run({}, fake)
    assert f.status is Status.WARN and "list Purview runs" in f.detail
    assert f.evidence["runsError"]["status"] == 403


async def test_disabled_version_fails_since_its_last_attribute_change() -> None:
    versions = [
        kv.version("v1", enabled=False, created="2026-01-01T00:00:00Z", updated="2026-11-25T00:00:00Z")
    ]
    [f] = await _run(kv.kv_world(versions=versions))
    assert f.status is Status.FAIL
    assert f.evidence["causeSince"] == "2026-11-25T00:00:00Z" and f.evidence["blocksEveryRun"] is True


async def test_pass_title_names_no_problem() -> None:
    [f] = await _run(kv.kv_world(versions=[kv.version("v1")]))
    assert (
        f.status is Status.PASS
        and f.title == f"Secret {kv.SECRET} (latest version) in Key Vault {kv.VAULT} exists and is enabled"
    )


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
    [create] = [step for step in f.fix if "az keyvault secret set" in step]
    assert create.startswith("read -rsp 'New value: ' VALUE\naz keyvault secret set \\\n")
    assert f"--vault-name {kv.VAULT}" in create and f"--name {kv.SECRET}" in create
    assert '--value "$VALUE"' in create and "--query attributes" in create  # the value never on screen
    assert f.evidence["softDeleted"] is False and f.evidence["blocksEveryRun"] is True


async def test_soft_deleted_secret_fails_with_recover_not_set() -> None:
    fake = FakeWorld(kv.kv_world(versions=kv.deleted([kv.version("v1")], "2026-11-20T10:00:00Z")))
    [f] = await _run({}, fake)
    assert (
        f.status is Status.FAIL and f.title == f"Secret {kv.SECRET} in Key Vault {kv.VAULT} is soft-deleted"
    )
    assert f.fix == [f"az keyvault secret recover --vault-name {kv.VAULT} --name {kv.SECRET}"]
    assert "deleted on 2026-11-20 10:00 UTC" in f.detail
    assert f.evidence["causeSince"] == "2026-11-20T10:00:00Z" and f.evidence["softDeleted"] is True
    assert fake.calls[f"kv.deleted:{kv.VAULT_URI.rstrip('/')}"] == 1


async def test_unreadable_deleted_secrets_say_missing_or_soft_deleted_with_both_fixes() -> None:
    fake = FakeWorld(kv.kv_world(versions=kv.deleted([kv.version("v1")])))
    fake.fail["kv.deleted"] = GatewayError(
        "list deleted secrets", status=403, code="Forbidden", permission=KV_LIST_PERMISSION
    )
    [f] = await _run({}, fake)
    assert f.status is Status.FAIL and "missing or soft-deleted" in f.title
    assert any("secret recover" in line for line in f.fix) and any("secret set" in line for line in f.fix)
    assert "list deleted secrets" in f.detail and f.evidence["softDeleted"] is None


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
