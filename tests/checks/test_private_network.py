"""private-network: source posture × scan runtime, managed private endpoints, multi-source SQL."""

from __future__ import annotations

from typing import Any

import pytest

from checks import fixes
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
    assert f.fix[0] == fixes.wrap(
        f"az storage account network-rule add --resource-group {w.RG} --account-name {w.STORAGE_NAME} "
        f"--resource-id {w.ACCOUNT_ID} --tenant-id {w.TENANT}"
    )
    assert "\\\n  --resource-id" in f.fix[0]  # one flag per line


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


# --- SQL / Synapse / Cosmos DB on the Azure IR: the "Allow Azure services" rule ------------------------
SQL_FIX = fixes.wrap(
    f"az sql server firewall-rule create -g {w.RG} -s {w.SQL_NAME} -n AllowAllWindowsAzureIps "
    "--start-ip-address 0.0.0.0 --end-ip-address 0.0.0.0"
)
PROBLEM_WORDS = ("no ", "not ", "deny", "denies", "fail", "missing", "cannot", "refus", "pending", "rejected")


def _sql(*rules: dict[str, Any], **server: Any) -> dict[str, Any]:
    world = w.sql_world(**server)
    world["resources"].extend(rules)
    return world


def _assert_clean_pass(f: Finding) -> None:
    assert f.status is Status.PASS, (f.status, f.title)
    assert not any(word in f.title.lower() for word in PROBLEM_WORDS), f.title


async def test_sql_open_to_the_internet_without_the_azure_rule_fails_on_the_azure_ir() -> None:
    [f] = await _run(_sql(w.firewall_rule(w.SQL_ID, "office", "203.0.113.10", "203.0.113.20")), "sales-sql")
    assert f.status is Status.FAIL and "Allow Azure services" in f.title and w.SQL_NAME in f.title
    assert f.fix[0] == SQL_FIX
    assert "40615" in f.detail and "causeSince" not in f.evidence
    assert f.evidence["posture"]["firewallRules"] == [
        {"name": "office", "startIpAddress": "203.0.113.10", "endIpAddress": "203.0.113.20"}
    ]


@pytest.mark.parametrize(
    "rule",
    [
        w.firewall_rule(w.SQL_ID),  # the portal's AllowAllWindowsAzureIps
        w.firewall_rule(w.SQL_ID, "azure-services"),  # any name counts
        w.firewall_rule(w.SQL_ID, "everyone", "0.0.0.0", "255.255.255.255"),
    ],
)
async def test_sql_with_the_azure_rule_or_an_open_firewall_passes(rule: dict[str, Any]) -> None:
    [f] = await _run(_sql(rule), "sales-sql")
    _assert_clean_pass(f)
    assert rule["name"] in f.evidence["posture"]["exception"]


async def test_sql_database_resource_id_reads_the_server() -> None:
    world = _sql(w.firewall_rule(w.SQL_ID))
    w.pv(world)["dataSources"][0]["properties"]["resourceId"] = f"{w.SQL_ID}/databases/sales"
    fake = FakeWorld(world)
    [f] = await private_network.run(await fake.target("sales-sql"))
    assert f.status is Status.PASS and f.evidence["resourceId"] == w.SQL_ID
    assert fake.calls[f"arm.children:{w.SQL_ID.lower()}:firewallrules"] == 1


async def test_unreadable_firewall_rules_are_unknown_never_fail() -> None:
    fake = FakeWorld(_sql())
    call = f"list {w.SQL_ID}/firewallRules"
    fake.fail["arm.children"] = GatewayError(
        call, status=403, code="AuthorizationFailed", permission="Reader"
    )
    [f] = await private_network.run(await fake.target("sales-sql"))
    assert f.status is Status.UNKNOWN and "firewall rules" in f.title
    assert call in f.detail and "needs Reader" in f.detail
    assert f.evidence["error"]["call"] == call


async def test_unreadable_firewall_rules_do_not_matter_when_public_access_is_disabled() -> None:
    fake = FakeWorld(_sql(public="Disabled"))
    fake.fail["arm.children"] = GatewayError("list firewall rules", status=403, permission="Reader")
    [f] = await private_network.run(await fake.target("sales-sql"))
    assert f.status is Status.FAIL and "denies public network access" in f.title


@pytest.mark.parametrize("runtime", ["SelfHosted", "Managed"])
async def test_other_runtimes_do_not_need_the_azure_rule_and_do_not_read_it(runtime: str) -> None:
    world = _sql()
    w.pv(world)["scans"]["sales-sql"] = [
        w.scan("nightly", "AzureSqlDatabaseCredential", credential="sql", credential_type="SqlAuth")
    ]
    _on_ir(world, w.integration_runtime("ir-1", runtime), "sales-sql")
    w.pv(world)["managedPrivateEndpoints"]["default"] = [w.endpoint("pe-sql", w.SQL_ID, "sqlServer")]
    fake = FakeWorld(world)
    [f] = await private_network.run(await fake.target("sales-sql"))
    _assert_clean_pass(f)
    assert not any(c.startswith("arm.children") for c in fake.calls)


async def test_error_40615_in_the_newest_run_corroborates() -> None:
    world = _sql()
    message = (
        "Cannot open server 'sales-sql' requested by the login. Client with IP address '20.50.2.17' is not "
        "allowed to access the server. Error 40615"
    )
    w.pv(world)["runs"]["sales-sql/nightly"] = [
        w.scan_run("Failed", "2026-11-28T02:00:00Z", error_message=message),
        w.scan_run("Succeeded", "2026-11-20T02:00:00Z"),
    ]
    [f] = await _run(world, "sales-sql")
    assert f.status is Status.FAIL and "The newest run failed with" in f.detail
    assert "40615" in f.evidence["runError"] or "not allowed" in f.evidence["runError"]


def _synapse_world(*rules: dict[str, Any]) -> dict[str, Any]:
    world = w.base_world()
    return w.with_source(
        world,
        w.data_source("sales-syn", "AzureSynapseWorkspace", w.SYNAPSE_ID),
        [w.scan("weekly", "AzureSynapseWorkspaceMsi")],
        resources=[w.synapse_workspace(), *rules],
    )


async def test_synapse_needs_the_azure_rule_too() -> None:
    [f] = await _run(_synapse_world(), "sales-syn")
    assert f.status is Status.FAIL and "Allow Azure services" in f.title
    assert f.fix[0] == fixes.wrap(
        f"az synapse workspace firewall-rule create --resource-group {w.RG} --workspace-name sales-syn "
        "--name AllowAllWindowsAzureIps --start-ip-address 0.0.0.0 --end-ip-address 0.0.0.0"
    )
    [f] = await _run(_synapse_world(w.firewall_rule(w.SYNAPSE_ID)), "sales-syn")
    _assert_clean_pass(f)


def _cosmos_world(account: dict[str, Any]) -> dict[str, Any]:
    world = w.base_world()
    return w.with_source(
        world,
        w.data_source("sales-cosmos", "AzureCosmosDb", w.COSMOS_ID),
        [w.scan("daily", "AzureCosmosDbCredential", credential="cosmos-key", credential_type="AccountKey")],
        resources=[account],
    )


@pytest.mark.parametrize(
    ("ip_rules", "vnet_filter", "status"),
    [
        ([], False, Status.PASS),  # public access fully open
        (["203.0.113.7"], False, Status.FAIL),
        (["203.0.113.7", "0.0.0.0"], False, Status.PASS),  # "accept connections from … Azure datacenters"
        ([], True, Status.FAIL),  # VNet filter only: public Azure addresses are refused
        (["0.0.0.0"], True, Status.PASS),
    ],
)
async def test_cosmos_ip_filtering_needs_the_azure_datacenters_rule(
    ip_rules: list[str], vnet_filter: bool, status: Status
) -> None:
    account = w.cosmos_firewall(w.cosmos_account(), ip_rules, vnet_filter=vnet_filter)
    [f] = await _run(_cosmos_world(account), "sales-cosmos")
    assert f.status is status
    if status is Status.PASS:
        _assert_clean_pass(f)
    else:
        assert "Azure datacenters" in f.title
        ranges = ",".join([*ip_rules, "0.0.0.0"])
        assert f.fix[0] == fixes.wrap(
            f'az cosmosdb update --resource-group {w.RG} --name sales-cosmos --ip-range-filter "{ranges}"'
        )


async def test_cosmos_public_access_disabled_fails_and_a_self_hosted_ir_needs_no_rule() -> None:
    [f] = await _run(_cosmos_world(w.cosmos_account(public="Disabled")), "sales-cosmos")
    assert f.status is Status.FAIL and "denies public network access" in f.title
    world = _cosmos_world(w.cosmos_firewall(w.cosmos_account(), ["203.0.113.7"]))
    _on_ir(world, w.integration_runtime("shir-01", "SelfHosted"), "sales-cosmos")
    [f] = await _run(world, "sales-cosmos")
    _assert_clean_pass(f)


# --- multi-source scans cover only their resourceTypes ------------------------------------------------
def _multi_world(scans: list[dict[str, Any]], *servers: dict[str, Any]) -> dict[str, Any]:
    world = w.base_world()
    return w.with_source(
        world,
        w.data_source("contoso-sub", "AzureSubscription", w.SUB_ID),
        scans,
        resources=list(servers) or [w.sql_server("open-sql"), w.sql_server("closed-sql", public="Disabled")],
    )


@pytest.mark.parametrize("sql_key", ["AzureSqlDatabase", "azureSqlDatabase", "AzureSqlDataWarehouse"])
async def test_multi_source_covering_sql_fails_on_private_sql_servers(sql_key: str) -> None:
    world = _multi_world([w.multi_scan("all", "AzureSubscriptionMsi", ["AzureStorage", sql_key])])
    [f] = await _run(world, "contoso-sub")
    assert f.status is Status.FAIL and f.scan == "all"
    assert "closed-sql" in f.title and "open-sql" not in f.title
    assert f.evidence["publicAccessDisabled"] == [f"{w.RG_ID}/providers/Microsoft.Sql/servers/closed-sql"]
    assert f.evidence["coversSql"] is True
    assert any("closed-sql" in line for line in f.fix)


async def test_multi_source_not_covering_sql_does_not_apply_and_lists_no_servers() -> None:
    world = _multi_world([w.multi_scan("storage-only", "AzureSubscriptionMsi", ["AzureStorage", "AdlsGen2"])])
    fake = FakeWorld(world)
    [f] = await private_network.run(await fake.target("contoso-sub"))
    assert f.status is Status.SKIPPED and "does not cover Azure SQL" in f.title
    assert not any(c.startswith("arm.list") for c in fake.calls)


async def test_multi_source_scans_are_judged_each_on_their_own_types() -> None:
    world = _multi_world(
        [
            w.multi_scan("storage-only", "AzureSubscriptionMsi", ["AzureStorage"]),
            w.multi_scan("databases", "AzureSubscriptionMsi", ["AzureSqlDatabase"]),
        ]
    )
    found = {f.scan: f.status for f in await _run(world, "contoso-sub")}
    assert found == {"storage-only": Status.SKIPPED, "databases": Status.FAIL}


async def test_multi_source_without_resource_types_warns() -> None:
    world = _multi_world([w.multi_scan("all", "AzureSubscriptionMsi", None)])
    [f] = await _run(world, "contoso-sub")
    assert f.status is Status.WARN and "lists no resource types" in f.title


async def test_multi_source_with_a_sql_name_filter_warns() -> None:
    scan = w.multi_scan("some", "AzureSubscriptionMsi", ["AzureSqlDatabase"])
    scan["properties"]["resourceTypes"]["AzureSqlDatabase"]["resourceNameFilter"] = {
        "resources": ["open-sql"]
    }
    [f] = await _run(_multi_world([scan]), "contoso-sub")
    assert f.status is Status.WARN and f.evidence["resourceNameFilter"] == {"resources": ["open-sql"]}


async def test_multi_source_without_private_sql_passes() -> None:
    world = _multi_world(
        [w.multi_scan("all", "AzureSubscriptionMsi", ["AzureSqlDatabase"])], w.sql_server("open-sql")
    )
    [f] = await _run(world, "contoso-sub")
    _assert_clean_pass(f)


# --- managed VNet IR: endpoints judged per sub-resource, provisioning and approval ------------------
def _managed_adls(*endpoints: dict[str, Any]) -> dict[str, Any]:
    world = w.adls_world(public="Disabled")
    _on_ir(world, w.integration_runtime("mvnet-ir", "Managed", vnet="default"))
    w.pv(world)["managedPrivateEndpoints"]["default"] = [
        w.endpoint("other", w.SQL_ID, "sqlServer"),
        *endpoints,
    ]
    return world


ADLS = w.STORAGE_ID.lower()


@pytest.mark.parametrize(
    ("endpoints", "status", "phrase"),
    [
        ([w.endpoint("pe-dfs", ADLS, "dfs"), w.endpoint("pe-blob", ADLS, "blob")], Status.PASS, None),
        ([w.endpoint("pe-dfs", ADLS, "dfs")], Status.WARN, "sub-resource blob"),  # blob is recommended
        ([w.endpoint("pe-blob", ADLS, "blob")], Status.FAIL, "sub-resource dfs"),  # the wrong groupId
        ([w.endpoint("pe-dfs", ADLS, "dfs", "Pending")], Status.FAIL, "Pending"),
        ([w.endpoint("pe-dfs", ADLS, "dfs", "Rejected")], Status.FAIL, "Rejected"),
        ([w.endpoint("pe-dfs", ADLS, "dfs", provisioning="Failed")], Status.FAIL, "provisioning is Failed"),
        (
            [
                w.endpoint("pe-dfs", ADLS, "dfs", provisioning="Provisioning"),
                w.endpoint("pe-b", ADLS, "blob"),
            ],
            Status.WARN,
            "still being provisioned",
        ),
        ([], Status.FAIL, "No managed private endpoint"),
    ],
)
async def test_managed_vnet_endpoint_judged_by_sub_resource_and_state(
    endpoints: list[dict[str, Any]], status: Status, phrase: str | None
) -> None:
    [f] = await _run(_managed_adls(*endpoints))
    assert f.status is status, (f.title, f.detail)
    if status is Status.PASS:
        _assert_clean_pass(f)
    else:
        assert phrase is not None and (phrase in f.title or phrase in f.detail)
    assert [e["name"] for e in f.evidence["managedPrivateEndpoints"]] == [e["name"] for e in endpoints]


async def test_pending_endpoint_gives_the_approve_fix() -> None:
    [f] = await _run(
        _managed_adls(w.endpoint("pe-dfs", ADLS, "dfs", "Pending"), w.endpoint("b", ADLS, "blob"))
    )
    assert f.status is Status.FAIL and "pe-dfs (dfs) is Pending" in f.title
    assert f.fix[0].startswith(f"az network private-endpoint-connection list \\\n  --id {ADLS} ")
    assert "approve" in f.fix[1]


async def test_managed_vnet_sql_needs_a_sql_server_endpoint() -> None:
    world = _sql()
    w.pv(world)["scans"]["sales-sql"] = [w.scan("nightly", "AzureSqlDatabaseMsi", ir="mvnet-ir")]
    w.pv(world)["integrationRuntimes"].append(w.integration_runtime("mvnet-ir", "Managed"))
    w.pv(world)["managedPrivateEndpoints"]["default"] = [w.endpoint("pe-sql", w.SQL_ID, "sqlServer")]
    [f] = await _run(world, "sales-sql")
    _assert_clean_pass(f)
    w.pv(world)["managedPrivateEndpoints"]["default"] = [w.endpoint("pe-sql", w.SQL_ID, "blob")]
    [f] = await _run(world, "sales-sql")
    assert f.status is Status.FAIL and "sub-resource sqlServer" in f.title
