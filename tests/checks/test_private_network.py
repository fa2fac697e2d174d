"""private-network: source posture × scan runtime, managed private endpoints, multi-source SQL."""

from __future__ import annotations

from typing import Any

import pytest

from checks import sections as s
from checks.catalogue import private_network
from checks.errors import GatewayError
from checks.model import Finding, Status
from tests.checks import worlds as w
from tests.fakes import FakeWorld


async def _run(world: dict[str, Any], source: str = "sales-adls") -> list[Finding]:
    return await private_network.run(await FakeWorld(world).target(source))


def _on_ir(world: dict[str, Any], ir: dict[str, Any], source: str = "sales-adls") -> None:
    w.pv(world)["integrationRuntimes"].append(ir)
    for scan in w.pv(world)["scans"][source]:
        scan["properties"]["connectedVia"] = {"referenceName": ir["name"]}


def _with_key_credential(world: dict[str, Any]) -> None:
    w.pv(world)["scans"]["sales-adls"] = [
        w.scan("weekly", "AdlsGen2Credential", credential="key", credential_type="AccountKey")
    ]
    w.pv(world)["credentials"].append(w.credential("key", "AccountKey", {"accountKey": w.kv_secret_ref("k")}))


@pytest.mark.parametrize(
    ("storage", "status", "exception"),
    [
        ({}, Status.PASS, None),
        ({"public": None}, Status.PASS, None),
        ({"public": "Disabled"}, Status.FAIL, None),
        ({"default_action": "Deny", "bypass": "Logging, Metrics"}, Status.FAIL, None),
        ({"default_action": "Deny", "bypass": "Logging, AzureServices"}, Status.PASS, "trusted"),
        (
            {"default_action": "Deny", "bypass": "None", "resource_rules": [w.ACCOUNT_ID.upper()]},
            Status.PASS,
            "rule",
        ),
        ({"default_action": "Deny", "bypass": "None", "resource_rules": [w.SYNAPSE_ID]}, Status.FAIL, None),
        ({"public": "SecuredByPerimeter"}, Status.WARN, None),
    ],
)
async def test_storage_posture_on_azure_ir(
    storage: dict[str, Any], status: Status, exception: str | None
) -> None:
    [f] = await _run(w.adls_world(**storage))
    assert f.status is status and f.section == s.PRIVATE_LINK and f.scan == "weekly"
    assert f.evidence["runtime"]["kind"] == "azure"
    if exception:
        assert exception in str(f.evidence["posture"]["exception"])


async def test_firewall_fail_gives_resource_instance_rule_fix() -> None:
    [f] = await _run(w.adls_world(default_action="Deny", bypass="None"))
    assert f.status is Status.FAIL
    assert f.fix[0] == (
        f"az storage account network-rule add --resource-group {w.RG} --account-name {w.STORAGE_NAME} "
        f"--resource-id {w.ACCOUNT_ID} --tenant-id {w.TENANT}"
    )


async def test_trusted_exception_does_not_help_a_key_credential() -> None:
    world = w.adls_world(default_action="Deny", bypass="AzureServices")
    _with_key_credential(world)
    [f] = await _run(world)
    assert f.status is Status.WARN


async def test_self_hosted_ir_with_msi_warns_and_with_credential_passes() -> None:
    world = w.adls_world(public="Disabled")
    _on_ir(world, w.integration_runtime("shir-01", "SelfHosted"))
    [f] = await _run(world)
    assert f.status is Status.WARN and f.evidence["runtime"] == {
        "kind": "selfhosted",
        "name": "shir-01",
        "managedVirtualNetwork": None,
    }
    _with_key_credential(world)
    _on_ir(world, w.integration_runtime("shir-02", "SelfHosted"))
    [f] = await _run(world)
    assert f.status is Status.PASS


@pytest.mark.parametrize(
    ("endpoint_status", "status"),
    [("Approved", Status.PASS), ("Pending", Status.FAIL), ("Rejected", Status.FAIL), (None, Status.FAIL)],
)
async def test_managed_vnet_needs_approved_endpoint(endpoint_status: str | None, status: Status) -> None:
    world = w.adls_world(public="Disabled")
    _on_ir(world, w.integration_runtime("mvnet-ir", "Managed", vnet="default"))
    if endpoint_status:
        w.pv(world)["managedPrivateEndpoints"]["default"] = [
            w.managed_private_endpoint("other", w.SQL_ID, "Approved"),
            w.managed_private_endpoint("pe-adls", w.STORAGE_ID.lower(), endpoint_status),
        ]
    [f] = await _run(world)
    assert f.status is status
    assert f.evidence["managedPrivateEndpoint"]["status"] == endpoint_status
    if endpoint_status == "Pending":
        assert "Pending" in f.title and "approve" in f.fix[1]


async def test_sql_public_access_disabled_on_azure_ir_fails() -> None:
    [f] = await _run(w.sql_world(public="Disabled"), "sales-sql")
    assert f.status is Status.FAIL and w.SQL_NAME in f.title
    assert f.evidence["posture"]["publicNetworkAccess"] == "Disabled"


async def test_sql_database_resource_id_reads_the_server() -> None:
    world = w.sql_world()
    w.pv(world)["dataSources"][0]["properties"]["resourceId"] = f"{w.SQL_ID}/databases/sales"
    fake = FakeWorld(world)
    [f] = await private_network.run(await fake.target("sales-sql"))
    assert f.status is Status.PASS and f.evidence["resourceId"] == w.SQL_ID


async def test_multi_source_lists_private_sql_servers() -> None:
    world = w.base_world()
    w.with_source(
        world,
        w.data_source("contoso-sub", "AzureSubscription", w.SUB_ID),
        [w.scan("all", "AzureSubscriptionMsi")],
        resources=[w.sql_server("open-sql"), w.sql_server("closed-sql", public="Disabled")],
    )
    [f] = await _run(world, "contoso-sub")
    assert f.status is Status.FAIL and f.scan is None
    assert "closed-sql" in f.title and "open-sql" not in f.title
    assert f.evidence["publicAccessDisabled"] == [f"{w.RG_ID}/providers/Microsoft.Sql/servers/closed-sql"]
    assert any("closed-sql" in line for line in f.fix)


async def test_multi_source_without_private_sql_passes() -> None:
    world = w.base_world()
    w.with_source(
        world,
        w.data_source("contoso-sub", "AzureSubscription", w.SUB_ID),
        [w.scan("all", "AzureSubscriptionMsi")],
        resources=[w.sql_server("open-sql")],
    )
    [f] = await _run(world, "contoso-sub")
    assert f.status is Status.PASS


async def test_missing_ir_or_resource_is_unknown() -> None:
    world = w.adls_world()
    for scan in w.pv(world)["scans"]["sales-adls"]:
        scan["properties"]["connectedVia"] = {"referenceName": "gone"}
    [f] = await _run(world)
    assert f.status is Status.UNKNOWN and "gone" in f.detail
    fake = FakeWorld(w.adls_world())
    fake.fail["arm.resource"] = GatewayError(
        "GET storage account", status=403, permission="Reader on the account"
    )
    [f] = await private_network.run(await fake.target("sales-adls"))
    assert f.status is Status.UNKNOWN and "Reader on the account" in f.detail


async def test_unknown_kind_skipped() -> None:
    world = w.base_world()
    w.with_source(world, w.data_source("ora", "Oracle", None), [w.scan("s", "OracleCredential")])
    [f] = await _run(world, "ora")
    assert f.status is Status.SKIPPED and "Oracle" in f.title
