"""purview-private: a Purview account closed to the public, and the self-hosted runtimes that scan for it."""

from __future__ import annotations

from typing import Any

from checks import sections as s
from checks.catalogue import purview_private
from checks.model import Finding, Status
from tests.checks import net_worlds as n
from tests.checks import worlds as w
from tests.fakes import FakeWorld

INTERNAL = (
    "Internal system error. Please contact support with correlationId:0f1e-22 System Error, contact support."
)
MANAGED_RG = f"{w.SUB_ID}/resourceGroups/managed-rg-pv"
MANAGED_SA = f"{MANAGED_RG}/providers/Microsoft.Storage/storageAccounts/scanwesteuropeabc"
MANAGED_HUB = f"{MANAGED_RG}/providers/Microsoft.EventHub/namespaces/atlas-0a1b"


def _account(world: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in world["resources"] if r["id"] == w.ACCOUNT_ID)


def _world(public: str = "Disabled", *, shir: bool = True) -> dict[str, Any]:
    world = w.adls_world()
    _account(world)["properties"]["publicNetworkAccess"] = public
    if shir:
        n.on_shir(world)
    return world


def _managed(world: dict[str, Any], *, closed: bool = True) -> None:
    """An account created before December 2023: managed storage and Event Hubs namespace."""
    props = _account(world)["properties"]
    props["managedResources"] = {
        "resourceGroup": MANAGED_RG,
        "storageAccount": MANAGED_SA,
        "eventHubNamespace": MANAGED_HUB,
    }
    props["managedResourcesPublicNetworkAccess"] = "Disabled" if closed else "Enabled"
    world["resources"].append(
        {
            "id": MANAGED_SA,
            "name": MANAGED_SA.rsplit("/", 1)[-1],
            "type": "Microsoft.Storage/storageAccounts",
            "properties": {"publicNetworkAccess": "Disabled", "privateEndpointConnections": []},
        }
    )
    world["resources"].append(
        {
            "id": MANAGED_HUB,
            "name": MANAGED_HUB.rsplit("/", 1)[-1],
            "type": "Microsoft.EventHub/namespaces",
            "properties": {"publicNetworkAccess": "Disabled", "privateEndpointConnections": []},
        }
    )


async def _run(world: dict[str, Any], fake: FakeWorld | None = None) -> list[Finding]:
    return await purview_private.run(await (fake or FakeWorld(world)).target("sales-adls"))


async def test_no_self_hosted_scan_is_skipped_without_reading_the_account_endpoints() -> None:
    world = _world(shir=False)
    fake = FakeWorld(world)
    [f] = await _run(world, fake)
    assert f.status is Status.SKIPPED
    assert not [c for c in fake.calls if "privateendpoints" in c]


async def test_public_account_passes() -> None:
    [f] = await _run(_world("Enabled"))
    assert f.status is Status.PASS and f.scan == "weekly"


async def test_private_account_without_account_endpoint_fails_and_links_the_troubleshooting_page() -> None:
    [f] = await _run(_world())
    assert f.status is Status.FAIL and "no account private endpoint" in f.title
    assert f.section == s.PURVIEW_PRIVATE
    assert f.to_json("https://example.test/guide")["docUrl"].startswith(
        "https://learn.microsoft.com/en-us/purview/catalog-private-link-troubleshoot#"
    )
    assert any("Private endpoint connections" in step and "https://" in step for step in f.fix)


async def test_pending_account_endpoint_fails_with_the_approve_command_and_the_symptom() -> None:
    world = _world()
    n.add_endpoint(world, w.ACCOUNT_ID, "pv-account", "account", status="Pending")
    n.add_endpoint(world, w.ACCOUNT_ID, "pv-portal", "portal")
    w.pv(world)["runs"]["sales-adls/weekly"] = [
        w.scan_run("Failed", "2026-11-28T02:10:00Z", error_message=INTERNAL)
    ]
    [f] = await _run(world)
    assert f.status is Status.FAIL and "Pending" in f.title
    assert any("private-endpoint-connection approve" in x and "pv-account.conn" in x for x in f.fix)
    assert "Internal system error" in f.detail


async def test_approved_account_and_portal_without_managed_resources_warns_about_ingestion() -> None:
    world = _world()
    n.add_endpoint(world, w.ACCOUNT_ID, "pv-account", "account")
    n.add_endpoint(world, w.ACCOUNT_ID, "pv-portal", "portal")
    [f] = await _run(world)
    assert f.status is Status.WARN and "ingestion private endpoints are not readable" in f.title
    groups = {g for e in f.evidence["accountEndpoints"] for g in e["groupIds"]}
    assert groups == {"account", "portal"}


async def test_missing_portal_endpoint_is_a_warning_only() -> None:
    world = _world()
    n.add_endpoint(world, w.ACCOUNT_ID, "pv-account", "account")
    _managed(world, closed=False)
    [f] = await _run(world)
    assert f.status is Status.WARN and "portal" in f.title


async def test_closed_managed_storage_without_a_queue_endpoint_fails() -> None:
    world = _world()
    n.add_endpoint(world, w.ACCOUNT_ID, "pv-account", "account")
    n.add_endpoint(world, w.ACCOUNT_ID, "pv-portal", "portal")
    _managed(world)
    n.add_endpoint(world, MANAGED_SA, "pv-ingest-blob", "blob")
    n.add_endpoint(world, MANAGED_HUB, "pv-ingest-ns", "namespace")
    [f] = await _run(world)
    assert f.status is Status.FAIL and "queue" in f.title
    assert "vnet-scan" in " ".join(f.fix)  # the runtime's machines belong in the ingestion endpoints' VNet


async def test_everything_approved_passes() -> None:
    world = _world()
    n.add_endpoint(world, w.ACCOUNT_ID, "pv-account", "account")
    n.add_endpoint(world, w.ACCOUNT_ID, "pv-portal", "portal")
    _managed(world)
    for group in ("blob", "queue"):
        n.add_endpoint(world, MANAGED_SA, f"pv-ingest-{group}", group)
    n.add_endpoint(world, MANAGED_HUB, "pv-ingest-ns", "namespace")
    fake = FakeWorld(world)
    [f] = await _run(world, fake)
    assert f.status is Status.PASS, f.detail
    assert all(count == 1 for count in fake.calls.values()), fake.calls


async def test_an_unreadable_managed_storage_account_is_unknown_not_a_failure() -> None:
    world = _world()
    n.add_endpoint(world, w.ACCOUNT_ID, "pv-account", "account")
    n.add_endpoint(world, w.ACCOUNT_ID, "pv-portal", "portal")
    _managed(world)
    world["resources"] = [r for r in world["resources"] if r["id"] != MANAGED_SA]  # 404 on read
    n.add_endpoint(world, MANAGED_HUB, "pv-ingest-ns", "namespace")
    [f] = await _run(world)
    assert f.status is Status.UNKNOWN and "could not read managed resource" in f.title


async def test_an_approved_endpoint_naming_no_sub_resource_keeps_it_from_failing() -> None:
    # reviewer r12: an endpoint read fine but without groupIds may be the account endpoint
    world = _world()
    pe_id = n.add_endpoint(world, w.ACCOUNT_ID, "pv-any", "account", dns=False)
    pe = next(r for r in world["resources"] if r["id"] == pe_id)
    for link in pe["properties"]["privateLinkServiceConnections"]:
        link["properties"].pop("groupIds", None)
    found = await _run(world)
    assert [f.status for f in found] == [Status.WARN]
    assert "could not be read to see their sub-resource" in found[0].detail


async def test_a_pending_account_endpoint_beside_an_unreadable_approved_one_is_a_warning() -> None:
    # final review: the endpoint the bot cannot read may be the working account endpoint
    world = _world()
    n.add_endpoint(world, w.ACCOUNT_ID, "pv-old", "account", status="Pending")
    pe_id = n.add_endpoint(world, w.ACCOUNT_ID, "pv-any", "account", dns=False)
    pe = next(r for r in world["resources"] if r["id"] == pe_id)
    for link in pe["properties"]["privateLinkServiceConnections"]:
        link["properties"].pop("groupIds", None)
    found = await _run(world)
    assert [f.status for f in found] == [Status.WARN]
    assert "pv-old is Pending" in found[0].detail and "may serve it" in found[0].detail
