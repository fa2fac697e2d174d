"""private-dns: approval of the source's private endpoints and their DNS, for scans on a self-hosted IR."""

from __future__ import annotations

from typing import Any

from checks import fixes
from checks import sections as s
from checks.catalogue import private_dns
from checks.errors import GatewayError
from checks.model import Finding, Status
from tests.checks import net_worlds as n
from tests.checks import worlds as w
from tests.fakes import FakeWorld

DFS_ZONE = "privatelink.dfs.core.windows.net"
BLOB_ZONE = "privatelink.blob.core.windows.net"


def _world(public: str = "Disabled") -> dict[str, Any]:
    world = w.adls_world(public=public)
    n.on_shir(world)
    return world


async def _run(world: dict[str, Any], fake: FakeWorld | None = None) -> list[Finding]:
    fake = fake or FakeWorld(world)
    return await private_dns.run(await fake.target("sales-adls"))


async def test_azure_ir_scans_are_not_judged() -> None:
    [f] = await _run(w.adls_world(public="Disabled"))
    assert f.status is Status.SKIPPED and "self-hosted" in f.title


async def test_private_source_without_any_endpoint_fails() -> None:
    [f] = await _run(_world())
    assert f.status is Status.FAIL and f.scan == "weekly" and f.section == s.PRIVATE_DNS
    assert "no private endpoint" in f.title
    assert any("az network private-endpoint create" in step and "--group-id dfs" in step for step in f.fix)


async def test_public_source_without_endpoint_is_skipped() -> None:
    [f] = await _run(_world(public="Enabled"))
    assert f.status is Status.SKIPPED


async def test_pending_connection_fails_when_public_access_is_disabled() -> None:
    world = _world()
    n.add_endpoint(world, w.STORAGE_ID, "pe-dfs", "dfs", status="Pending")
    [f] = await _run(world)
    assert f.status is Status.FAIL and "Pending" in f.title
    conn = f"{w.STORAGE_ID}/privateEndpointConnections/pe-dfs.conn"
    assert any("az network private-endpoint-connection approve" in x and conn in x for x in f.fix)
    assert f.evidence["endpoints"][0]["status"] == "Pending"


async def test_pending_connection_only_warns_while_the_public_endpoint_is_open() -> None:
    world = _world(public="Enabled")
    n.add_endpoint(world, w.STORAGE_ID, "pe-dfs", "dfs", status="Pending")
    n.add_endpoint(world, w.STORAGE_ID, "pe-blob", "blob", status="Pending")
    [f] = await _run(world)
    assert f.status is Status.WARN


async def test_approved_endpoints_in_linked_zones_pass_and_each_fact_is_read_once() -> None:
    world = _world()
    dfs = n.add_endpoint(world, w.STORAGE_ID, "pe-dfs", "dfs")
    n.add_endpoint(world, w.STORAGE_ID, "pe-blob", "blob", ip="10.1.0.6")
    fake = FakeWorld(world)
    [f] = await _run(world, fake)
    assert f.status is Status.PASS, f.detail
    assert "vnet-scan" in f.detail and not f.fix
    assert f"nslookup {w.STORAGE_NAME}.dfs.core.windows.net" in f.detail
    assert f"nslookup {w.STORAGE_NAME}.blob.core.windows.net" in f.detail
    assert fake.calls[f"arm.resource:{dfs.lower()}"] == 1
    assert fake.calls[f"arm.children:{n.zone_id(DFS_ZONE).lower()}:a"] == 1
    assert fake.calls[f"arm.children:{n.zone_id(DFS_ZONE).lower()}:virtualnetworklinks"] == 1
    assert all(count == 1 for count in fake.calls.values()), fake.calls


async def test_missing_zone_group_warns_with_the_commands_and_what_to_verify_on_the_vm() -> None:
    world = _world()
    n.add_endpoint(world, w.STORAGE_ID, "pe-dfs", "dfs", dns=False)
    n.add_endpoint(world, w.STORAGE_ID, "pe-blob", "blob")
    [f] = await _run(world)
    assert f.status is Status.WARN and "no private DNS zone group" in f.title
    joined = "\n".join(f.fix)
    assert (
        "az network private-endpoint dns-zone-group create" in joined and "--endpoint-name pe-dfs" in joined
    )
    assert f"--private-dns-zone {DFS_ZONE}" in joined
    assert f"nslookup {w.STORAGE_NAME}.dfs.core.windows.net" in f.fix
    assert not any(line.lstrip().startswith("#") for step in f.fix for line in step.splitlines())


async def test_missing_a_record_warns_with_the_record_to_add() -> None:
    world = _world()
    n.add_endpoint(world, w.STORAGE_ID, "pe-dfs", "dfs", record=False, ip="10.1.0.9")
    n.add_endpoint(world, w.STORAGE_ID, "pe-blob", "blob")
    [f] = await _run(world)
    assert f.status is Status.WARN and f"no A record {w.STORAGE_NAME}" in f.title
    assert any("record-set a add-record" in x and "--ipv4-address 10.1.0.9" in x for x in f.fix)


async def test_zone_linked_to_no_vnet_warns() -> None:
    world = _world()
    n.add_endpoint(world, w.STORAGE_ID, "pe-dfs", "dfs", link=False)
    n.add_endpoint(world, w.STORAGE_ID, "pe-blob", "blob", link=False)
    [f] = await _run(world)
    assert f.status is Status.WARN and "linked to no virtual network" in f.title
    assert any("az network private-dns link vnet create" in x and n.VNET in x for x in f.fix)


async def test_adls_with_a_blob_endpoint_only_fails_for_dfs() -> None:
    world = _world()
    n.add_endpoint(world, w.STORAGE_ID, "pe-blob", "blob")
    [f] = await _run(world)
    assert f.status is Status.FAIL and "sub-resource dfs" in f.title


async def test_an_unreadable_foreign_endpoint_keeps_it_from_failing() -> None:
    world = _world()
    storage = next(r for r in world["resources"] if r["id"] == w.STORAGE_ID)
    foreign = (
        f"/subscriptions/{n.OTHER_SUB}/resourceGroups/rg-x/providers/Microsoft.Network/privateEndpoints/pe-x"
    )
    storage["properties"]["privateEndpointConnections"] = [n.connection(w.STORAGE_ID, foreign)]
    fake = FakeWorld(world)
    [f] = await _run(world, fake)
    assert f.status is Status.WARN
    assert f.evidence["endpoints"][0]["foreign"] is True
    assert not [c for c in fake.calls if n.OTHER_SUB in c]  # never read


async def test_an_unreadable_zone_is_unknown_not_a_failure() -> None:
    world = _world()
    n.add_endpoint(world, w.STORAGE_ID, "pe-dfs", "dfs")
    n.add_endpoint(world, w.STORAGE_ID, "pe-blob", "blob")
    fake = FakeWorld(world)
    denied = GatewayError(
        "list A records", status=403, code="AuthorizationFailed", permission="Reader on rg-net"
    )
    fake.fail[f"arm.children:{n.zone_id(DFS_ZONE).lower()}:a"] = denied
    [f] = await _run(world, fake)
    assert f.status is Status.UNKNOWN and "could not read the A records" in f.title


async def test_sql_server_endpoint_uses_the_database_zone() -> None:
    world = w.sql_world(public="Disabled")
    n.on_shir(world, "sales-sql")
    n.add_endpoint(world, w.SQL_ID, "pe-sql", "sqlServer", dns=False)
    [f] = await private_dns.run(await FakeWorld(world).target("sales-sql"))
    assert f.status is Status.WARN
    assert any("privatelink.database.windows.net" in x for x in f.fix)
    assert f"nslookup {w.SQL_NAME}.database.windows.net" in f.fix


async def test_a_rejected_connection_named_by_its_group_on_the_connection_fails_on_a_private_server() -> None:
    world = w.sql_world(public="Disabled")
    n.on_shir(world, "sales-sql")
    n.add_endpoint(world, w.SQL_ID, "pe-sql-old", "sqlServer", status="Rejected")
    n.add_endpoint(world, w.SQL_ID, "pe-sql-new", "sqlServer", status="Pending")
    server = next(r for r in world["resources"] if r["id"] == w.SQL_ID)
    for conn in server["properties"]["privateEndpointConnections"]:
        conn["properties"]["groupIds"] = ["sqlServer"]  # SQL states the group on the connection
    [f] = await private_dns.run(await FakeWorld(world).target("sales-sql"))
    assert f.status is Status.FAIL
    assert {e["status"] for e in f.evidence["endpoints"]} == {"Rejected", "Pending"}
    assert sum("private-endpoint-connection approve" in x for x in f.fix) == 2


# --- a managed instance lives in a VNet (reviewer r12) --------------------------------------------------

MI_ID = f"{w.RG_ID}/providers/Microsoft.Sql/managedInstances/sales-mi"


def _mi_world() -> dict[str, Any]:
    world = w.base_world()
    w.with_source(
        world,
        w.data_source("sales-mi", "AzureSqlDatabaseManagedInstance", MI_ID),
        [w.scan("nightly", "AzureSqlDatabaseManagedInstanceMsi")],
        resources=[
            {
                "id": MI_ID,
                "name": "sales-mi",
                "type": "Microsoft.Sql/managedInstances",
                "properties": {"publicDataEndpointEnabled": False},
            }
        ],
    )
    n.on_shir(world, "sales-mi")
    return world


async def test_a_managed_instance_without_a_private_endpoint_is_not_a_failure() -> None:
    # its public data endpoint is off, yet a runtime in its VNet (or a peered one) reaches it directly
    [f] = await private_dns.run(await FakeWorld(_mi_world()).target("sales-mi"))
    assert f.status is Status.SKIPPED and "VNet-local endpoint" in f.detail


async def test_a_pending_endpoint_on_a_managed_instance_is_only_a_warning() -> None:
    world = _mi_world()
    n.add_endpoint(world, MI_ID, "pe-mi", "managedInstance", status="Pending", dns=False)
    [f] = await private_dns.run(await FakeWorld(world).target("sales-mi"))
    assert f.status is Status.WARN and "Pending" in f.title


async def test_an_endpoint_without_a_zone_group_whose_zone_is_unknown_gets_prose_not_commands() -> None:
    # final review: no zone name is known for a managed instance's endpoint here, and a phrase pasted as
    # `--name` is a broken command: the steps say what to do, with no command to paste
    world = _mi_world()
    n.add_endpoint(world, MI_ID, "pe-mi", "managedInstance", dns=False)
    [f] = await private_dns.run(await FakeWorld(world).target("sales-mi"))
    assert f.status is Status.WARN and "no private DNS zone group" in f.detail
    assert not [step for step in f.fix if "az network private-dns zone create" in step]
    assert not [step for step in f.fix if "dns-zone-group create" in step]


def test_powershell_and_winget_steps_are_commands() -> None:
    steps = ("Restart-Service -Name DIAHostService", "Import-Certificate -FilePath x", "winget install x")
    for step in steps:
        assert fixes.is_command(step), step
