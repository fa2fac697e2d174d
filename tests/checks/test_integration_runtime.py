"""integration-runtime: Azure IR, missing IR, SHIR state / nodes / expiry / version, managed VNet."""

from __future__ import annotations

from typing import Any

import pytest

from checks import sections as s
from checks.catalogue import integration_runtime, private_network
from checks.errors import GatewayError
from checks.gateways.purview import PERMISSION as PURVIEW_PERMISSION
from checks.model import Finding, Status
from checks.run_evidence import overrule
from checks.runtimes import scan_runtime_name
from tests.checks import kv_worlds as kv
from tests.checks import worlds as w
from tests.fakes import FakeWorld

SHIR = "shir-onprem"
MIR = "managed-ir"
RECENT = "2026-11-28T07:45:00Z"


def node(
    name: str = "node-1",
    status: str = "Online",
    *,
    last: str = RECENT,
    expiry: str = "2027-06-01T00:00:00Z",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "nodeName": name,
        "machineName": f"{name.upper()}.corp",
        "status": status,
        "lastConnectTime": last,
        "expiryTime": expiry,
        **extra,
    }


def shir_status(
    state: str = "Online",
    nodes: list[dict[str, Any]] | None = None,
    *,
    version: str | None = "5.44.8984.1",
    latest: str = "5.44.8984.1",
    auto: str = "Off",
    **extra: Any,
) -> dict[str, Any]:
    tp: dict[str, Any] = {"nodes": nodes if nodes is not None else [node()], "autoUpdate": auto, **extra}
    if version is not None:
        tp |= {"version": version, "latestVersion": latest}
    return {"name": SHIR, "kind": "SelfHosted", "properties": {"state": state, "typeProperties": tp}}


def _shir_world(status: dict[str, Any] | None = None, scans: list[str] | None = None) -> dict[str, Any]:
    world = w.sql_world()
    w.pv(world)["scans"]["sales-sql"] = [
        w.scan(n, "AzureSqlDatabaseMsi", ir=SHIR) for n in scans or ["nightly"]
    ]
    w.pv(world)["integrationRuntimes"].append(w.integration_runtime(SHIR, "SelfHosted"))
    if status is not None:
        w.pv(world)["integrationRuntimeStatus"][SHIR] = status
    return world


async def _run(
    world: dict[str, Any], fake: FakeWorld | None = None, source: str = "sales-sql"
) -> list[Finding]:
    fake = fake or FakeWorld(world)
    return await integration_runtime.run(await fake.target(source))


# --- Azure IR and missing IR -------------------------------------------------------------------------
async def test_azure_ir_scan_passes_without_calls() -> None:
    fake = FakeWorld(w.sql_world())
    [f] = await _run({}, fake)
    assert f.status is Status.PASS and f.scan == "nightly" and f.section == s.SCANS_NO_LONGER_RUN
    assert "runs on the Azure integration runtime" in f.detail
    assert not any(c.startswith("purview.ir") for c in fake.calls)


async def test_missing_runtime_fails() -> None:
    world = _shir_world()
    w.pv(world)["integrationRuntimes"] = []
    [f] = await _run(world)
    assert f.status is Status.FAIL
    assert f.title == f"Scan nightly runs on integration runtime {SHIR}, which does not exist"


# --- self-hosted: connectivity -----------------------------------------------------------------------
async def test_healthy_shir_passes_connectivity_and_version() -> None:
    connectivity, version = await _run(_shir_world(shir_status()))
    assert connectivity.status is Status.PASS and "1 of 1 node Online" in connectivity.detail
    assert version.status is Status.PASS and "the latest" in version.detail
    assert connectivity.evidence["nodes"][0]["machineName"] == "NODE-1.corp"


async def test_spec_example_status_active_without_nodes_passes() -> None:
    [f] = await _run(_shir_world({"name": SHIR, "kind": "SelfHosted", "properties": {"state": "Active"}}))
    assert f.status is Status.PASS and f.title == f"Self-hosted integration runtime {SHIR} is online"


@pytest.mark.parametrize("state", ["Offline", "OFFLINE", "Stopped", "Limited"])
async def test_bad_state_fails_with_start_service_fix(state: str) -> None:
    [f, _] = await _run(_shir_world(shir_status(state, [node(status="Offline")])))
    assert f.status is Status.FAIL and f"state is {state}" in f.title
    assert "Start-Service DIAHostService" in f.fix and any("On NODE-1.corp" in step for step in f.fix)
    assert "no node is Online (node-1: Offline)" in f.detail


@pytest.mark.parametrize("state", ["NeedRegistration", "AccessDenied"])
async def test_registration_states_fail_with_register_fix(state: str) -> None:
    [f, _] = await _run(_shir_world(shir_status(state)))
    assert f.status is Status.FAIL
    assert any("dmgcmd.exe" in line and "-Key" in line for line in f.fix)


async def test_unknown_state_warns() -> None:
    [f, _] = await _run(_shir_world(shir_status("Hibernating")))
    assert f.status is Status.WARN and "not one the bot understands" in f.title


async def test_online_state_without_online_node_fails() -> None:
    nodes = [node("n1", "Offline"), node("n2", "Limited")]
    [f, _] = await _run(_shir_world(shir_status("Online", nodes)))
    assert f.status is Status.FAIL and "no node is Online (n1: Offline, n2: Limited)" in f.title


async def test_no_registered_node_fails() -> None:
    [f, _] = await _run(_shir_world(shir_status("Online", [])))
    assert f.status is Status.FAIL and "no node is registered" in f.title


async def test_one_node_offline_among_online_warns() -> None:
    [f, _] = await _run(_shir_world(shir_status("Online", [node("n1"), node("n2", "Offline")])))
    assert f.status is Status.WARN and f.evidence["problems"] == ["node n2 is Offline"]


async def test_stale_contact_warns() -> None:
    [f, _] = await _run(_shir_world(shir_status(nodes=[node(last="2026-11-28T05:00:00Z")])))
    assert f.status is Status.WARN and "last contacted Purview on 2026-11-28 05:00 UTC" in f.title


async def test_expired_node_fails_with_register_fix() -> None:
    [f, _] = await _run(_shir_world(shir_status(nodes=[node(expiry="2026-11-01T00:00:00Z")])))
    assert f.status is Status.FAIL and "node node-1 expired on 2026-11-01 00:00 UTC" in f.title
    assert any("Register NODE-1.corp again" in line for line in f.fix)


async def test_status_server_error_is_unknown_naming_call_and_permission() -> None:
    fake = FakeWorld(_shir_world(shir_status()))
    call = f"GET Purview integration runtime status {SHIR} (account {w.ACCOUNT})"
    fake.fail["purview.ir_status"] = GatewayError(
        call, status=500, code="InternalError", permission=PURVIEW_PERMISSION
    )
    [f] = await _run({}, fake)
    assert f.status is Status.UNKNOWN and f.scan == "nightly"
    assert call in f.detail and "HTTP 500" in f.detail
    assert f.evidence["error"]["call"] == call and f.evidence["error"]["permission"] == PURVIEW_PERMISSION


async def test_scans_sharing_a_runtime_get_one_finding_set() -> None:
    fake = FakeWorld(_shir_world(shir_status(), scans=["nightly", "weekly"]))
    connectivity, version = await _run({}, fake)
    assert connectivity.scan is None and connectivity.evidence["scans"] == ["nightly", "weekly"]
    assert version.evidence["scans"] == ["nightly", "weekly"]
    assert fake.calls[f"purview.ir_status:{SHIR}"] == 1


# --- self-hosted: version ----------------------------------------------------------------------------
async def test_out_of_date_with_auto_update_off_warns_with_download_fix() -> None:
    [_, f] = await _run(_shir_world(shir_status(version="5.40.1.1", latest="5.44.8984.1", auto="Off")))
    assert f.status is Status.WARN and f.title == f"Self-hosted integration runtime {SHIR} is out of date"
    assert "runs version 5.40.1.1, the latest is 5.44.8984.1, and auto-update is Off" in f.detail
    assert f.fix[0].startswith(
        "Download the latest SHIR (5.44.8984.1) from https://www.microsoft.com/download"
    )
    assert f.fix[0].endswith("install it on NODE-1.corp.")
    assert "Auto update: On" in f.fix[1]
    assert f.evidence["autoUpdate"] == "Off" and f.evidence["version"] == "5.40.1.1"


async def test_out_of_date_with_auto_update_on_passes() -> None:
    status = shir_status(
        version="5.40.1.1", latest="5.44.8984.1", auto="On", autoUpdateETA="2026-11-29T02:00:00Z"
    )
    [_, f] = await _run(_shir_world(status))
    assert f.status is Status.PASS and "auto-update is on and will install 5.44.8984.1" in f.detail


@pytest.mark.parametrize("version_status", ["Expired", "UpgradeRequired", "upgrade required"])
async def test_unsupported_version_status_fails(version_status: str) -> None:
    [_, f] = await _run(_shir_world(shir_status(auto="On", versionStatus=version_status)))
    assert f.status is Status.FAIL and f"versionStatus {version_status}" in f.detail


async def test_node_version_status_counts_too() -> None:
    [_, f] = await _run(_shir_world(shir_status(nodes=[node(versionStatus="Expired")])))
    assert f.status is Status.FAIL


# --- managed VNet IR ---------------------------------------------------------------------------------
def _managed_world(*endpoints: dict[str, Any], credential: bool = False) -> dict[str, Any]:
    world = kv.kv_world(scans=[kv.secret_scan(ir=MIR)]) if credential else w.sql_world()
    if not credential:
        w.pv(world)["scans"]["sales-sql"] = [w.scan("nightly", "AzureSqlDatabaseMsi", ir=MIR)]
    w.pv(world)["integrationRuntimes"].append(w.integration_runtime(MIR, "Managed"))
    w.pv(world)["managedPrivateEndpoints"]["default"] = list(endpoints)
    return world


async def test_pending_endpoint_to_the_source_fails_with_approve_fix() -> None:
    [f] = await _run(_managed_world(w.managed_private_endpoint("pe-sql", w.SQL_ID, "Pending", "sqlServer")))
    assert f.status is Status.FAIL and "pe-sql (sqlServer) is Pending" in f.title
    assert "the source sales-sql: pe-sql (sqlServer) is Pending" in f.detail
    assert f.fix[0].startswith(f"az network private-endpoint-connection list \\\n  --id {w.SQL_ID} ")
    assert f.fix[1].startswith("az network private-endpoint-connection approve \\\n  --id")
    assert f.evidence["endpoints"][0]["status"] == "Pending"


async def test_pending_endpoint_to_the_scans_vault_fails() -> None:
    world = _managed_world(
        w.managed_private_endpoint("pe-sql", w.SQL_ID, "Approved", "sqlServer"),
        w.managed_private_endpoint("pe-kv", kv.VAULT_ID.upper(), "Pending", "vault"),
        credential=True,
    )
    [f] = await _run(world)
    assert f.status is Status.FAIL and f"Key Vault {kv.VAULT}: pe-kv (vault) is Pending" in f.detail
    assert "pe-sql" not in f.detail


async def test_approved_endpoints_pass() -> None:
    [f] = await _run(_managed_world(w.managed_private_endpoint("pe-sql", w.SQL_ID, "Approved", "sqlServer")))
    assert f.status is Status.PASS and "pe-sql (sqlServer) is Approved" in f.detail


async def test_unrelated_pending_endpoint_is_ignored_and_absence_is_left_to_private_network() -> None:
    other = f"{w.RG_ID}/providers/Microsoft.Storage/storageAccounts/other"
    [f] = await _run(_managed_world(w.managed_private_endpoint("pe-other", other, "Pending")))
    assert f.status is Status.PASS and "private-network" in f.detail and f.evidence["endpoints"] == []


async def test_rejected_endpoint_fix_recreates_it() -> None:
    [f] = await _run(_managed_world(w.managed_private_endpoint("pe-sql", w.SQL_ID, "Rejected", "sqlServer")))
    assert f.status is Status.FAIL and "delete and re-create pe-sql" in f.fix[0]


async def test_endpoint_to_the_parent_server_covers_a_database_source() -> None:
    world = _managed_world(w.managed_private_endpoint("pe-sql", w.SQL_ID, "Pending", "sqlServer"))
    w.pv(world)["dataSources"][0]["properties"]["resourceId"] = f"{w.SQL_ID}/databases/sales"
    [f] = await _run(world)
    assert f.status is Status.FAIL and "the source sales-sql: pe-sql (sqlServer) is Pending" in f.detail


@pytest.mark.parametrize("name", ["AutoResolveIntegrationRuntime", "Azure AutoResolve Integration Runtime"])
def test_the_auto_resolve_name_is_the_azure_ir_not_a_runtime_to_look_up(name: str) -> None:
    assert scan_runtime_name({"properties": {"connectedVia": {"referenceName": name}}}) is None
    assert (
        scan_runtime_name({"properties": {"connectedVia": {"referenceName": "shir-onprem"}}}) == "shir-onprem"
    )
    assert scan_runtime_name({"properties": {"connectedVia": None}}) is None


# --- self-hosted states: Limited, Upgrading, and since when a runtime is down ---------------------------
STALE = "2026-11-28T05:00:00Z"  # three hours before the tests' now


async def test_limited_with_a_node_online_and_in_contact_warns() -> None:
    [f, _] = await _run(_shir_world(shir_status("Limited", [node("n1"), node("n2", "Offline", last=STALE)])))
    assert f.status is Status.WARN and "state is Limited: some nodes are down, n1 is Online" in f.title
    assert "node n2 is Offline" in f.evidence["problems"]


async def test_limited_with_the_online_node_out_of_contact_fails_since_its_last_contact() -> None:
    nodes = [node("n1", last=STALE), node("n2", "Offline", last="2026-11-28T04:00:00Z")]
    [f, _] = await _run(_shir_world(shir_status("Limited", nodes)))
    assert f.status is Status.FAIL and "no node is Online and in contact" in f.title
    assert f.evidence["causeSince"] == STALE


async def test_limited_without_nodes_in_the_status_warns() -> None:
    status = {"name": SHIR, "kind": "SelfHosted", "properties": {"state": "Limited"}}
    [f] = await _run(_shir_world(status))
    assert f.status is Status.WARN and "some nodes are down" in f.title


@pytest.mark.parametrize(
    ("state", "nodes"),
    [
        ("Online", [node("n1", "Upgrading")]),  # the only node is being updated
        ("Upgrading", [node("n1", "Upgrading")]),
        ("Online", [node("n1"), node("n2", "Upgrading")]),
    ],
)
async def test_an_upgrading_node_is_in_transit(state: str, nodes: list[dict[str, Any]]) -> None:
    [f, _] = await _run(_shir_world(shir_status(state, nodes)))
    assert f.status is Status.WARN and "transit" in f.detail
    assert not any("Start-Service" in line for line in f.fix)


@pytest.mark.parametrize("state", ["Offline", "NeedRegistration", "AccessDenied", "Expired"])
async def test_a_down_runtime_fails_since_its_last_contact(state: str) -> None:
    nodes = [node("n1", "Offline", last="2026-11-19T22:47:13Z"), node("n2", "Offline", last=STALE)]
    [f, _] = await _run(_shir_world(shir_status(state, nodes)))
    assert f.status is Status.FAIL and f"state is {state}" in f.title
    assert f.evidence["causeSince"] == STALE  # the last moment any node was in contact


async def test_an_expired_node_fails_since_its_expiry() -> None:
    [f, _] = await _run(_shir_world(shir_status(nodes=[node(expiry="2026-11-01T00:00:00Z")])))
    assert f.status is Status.FAIL and f.evidence["causeSince"] == "2026-11-01T00:00:00Z"


async def test_warnings_and_passes_carry_no_cause_since() -> None:
    [f, v] = await _run(_shir_world(shir_status("Limited", [node("n1"), node("n2", "Offline")])))
    assert "causeSince" not in f.evidence and "causeSince" not in v.evidence
    [f, _] = await _run(_shir_world(shir_status()))
    assert f.status is Status.PASS and "causeSince" not in f.evidence


async def test_a_success_before_the_last_contact_does_not_overrule_the_fail() -> None:
    nodes = [node("n1", "Offline", last="2026-11-19T22:47:13Z")]
    [f, _] = await _run(_shir_world(shir_status("Offline", nodes)))
    older = [w.scan_run("Succeeded", "2026-11-13T02:00:00Z")]
    newer = [w.scan_run("Succeeded", "2026-11-27T02:00:00Z")]
    assert overrule([f], {"nightly": older})[0].status is Status.FAIL
    assert overrule([f], {"nightly": newer})[0].status is Status.WARN


# --- managed VNet: sub-resource and provisioning, as private-network judges them ------------------------
async def test_endpoint_to_the_source_with_the_wrong_sub_resource_fails() -> None:
    [f] = await _run(_managed_world(w.endpoint("pe-sql", w.SQL_ID, "blob")))
    assert f.status is Status.FAIL and "sub-resource sqlServer" in f.title


async def test_endpoint_still_provisioning_warns_and_failed_provisioning_fails() -> None:
    [f] = await _run(_managed_world(w.endpoint("pe-sql", w.SQL_ID, "sqlServer", provisioning="Provisioning")))
    assert f.status is Status.WARN and "still being provisioned" in f.title
    [f] = await _run(_managed_world(w.endpoint("pe-sql", w.SQL_ID, "sqlServer", provisioning="Failed")))
    assert f.status is Status.FAIL and "delete and re-create pe-sql" in f.fix[0]


async def test_vault_endpoint_must_target_the_vault_sub_resource() -> None:
    world = _managed_world(
        w.endpoint("pe-sql", w.SQL_ID, "sqlServer"),
        w.endpoint("pe-kv", kv.VAULT_ID, "blob"),
        credential=True,
    )
    [f] = await _run(world)
    assert (
        f.status is Status.FAIL and f"Key Vault {kv.VAULT}" in f.detail and "sub-resource vault" in f.detail
    )


ADLS = w.STORAGE_ID


@pytest.mark.parametrize(
    "endpoints",
    [
        [w.endpoint("pe-dfs", ADLS, "dfs"), w.endpoint("pe-blob", ADLS, "blob")],
        [w.endpoint("pe-dfs", ADLS, "dfs")],
        [w.endpoint("pe-blob", ADLS, "blob")],
        [w.endpoint("pe-dfs", ADLS, "dfs", "Pending"), w.endpoint("pe-blob", ADLS, "blob")],
        [w.endpoint("pe-dfs", ADLS, "dfs", "Disconnected")],
        [w.endpoint("pe-dfs", ADLS, "dfs", provisioning="Failed"), w.endpoint("pe-blob", ADLS, "blob")],
        [w.endpoint("pe-dfs", ADLS, "dfs", provisioning="Updating"), w.endpoint("pe-blob", ADLS, "blob")],
        [w.endpoint("pe-dfs-old", ADLS, "dfs", "Rejected"), w.endpoint("pe-dfs", ADLS, "dfs")],
    ],
)
async def test_private_network_and_integration_runtime_agree_on_the_same_endpoints(
    endpoints: list[dict[str, Any]],
) -> None:
    world = w.adls_world(public="Disabled")
    w.pv(world)["scans"]["sales-adls"] = [w.scan("weekly", "AdlsGen2Msi", ir=MIR)]
    w.pv(world)["integrationRuntimes"].append(w.integration_runtime(MIR, "Managed"))
    w.pv(world)["managedPrivateEndpoints"]["default"] = endpoints
    fake = FakeWorld(world)
    target = await fake.target("sales-adls")
    [network] = await private_network.run(target)
    [runtime] = await integration_runtime.run(target)
    assert network.status is runtime.status, (network.title, runtime.title)
    assert fake.calls["purview.mpe:default"] == 1  # one read, shared by both checks


PROBLEM_WORDS = ("no ", "not ", "down", "fail", "offline", "expired", "pending", "rejected", "missing")


@pytest.mark.parametrize(
    "world",
    [
        _shir_world(shir_status()),
        _shir_world(shir_status(version="5.40.1.1", latest="5.44.8984.1", auto="On")),
        _managed_world(w.endpoint("pe-sql", w.SQL_ID, "sqlServer")),
        _managed_world(),
        w.sql_world(),
    ],
)
async def test_a_pass_never_names_a_problem_in_its_title(world: dict[str, Any]) -> None:
    passes = [f for f in await _run(world) if f.status is Status.PASS]
    assert passes
    for f in passes:
        assert not any(word in f.title.lower() for word in PROBLEM_WORDS), f.title
