"""The network checks through the real wire: a variant world (private source on a self-hosted runtime,
private Purview account, disabled schedule) served by the sandbox, read by the product's own clients.

It proves the sandbox serves what the checks read (a private endpoint's `privateDnsZoneGroups`, a zone's
`A` record sets and `virtualNetworkLinks` as child listings, a scan's `triggers/default`), that the
api-versions the gateway sends are accepted, and that one diagnosis asks for each URL once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from bot.azure import azure_clients
from bot.settings import Settings
from checks.catalogue import private_dns, purview_private, scan_schedule
from checks.diagnose import diagnose
from checks.facts import Facts
from checks.model import Status
from sandbox import Sandbox, load_world
from sandbox.world import WorldError
from tests.checks import net_worlds as n
from tests.checks import worlds as w
from tests.fakes import NOW

CHECKS = (private_dns.CHECK, purview_private.CHECK, scan_schedule.CHECK)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch


def variant() -> dict[str, Any]:
    world = w.adls_world(public="Disabled")
    n.on_shir(world)
    w.pv(world)["integrationRuntimeStatus"][n.SHIR] = n.shir_status(("node-1", None, 4))
    n.add_endpoint(world, w.STORAGE_ID, "pe-dfs", "dfs", record=False)  # zone without the A record
    n.add_endpoint(world, w.STORAGE_ID, "pe-blob", "blob", ip="10.1.0.6")
    account = next(r for r in world["resources"] if r["id"] == w.ACCOUNT_ID)
    account["properties"]["publicNetworkAccess"] = "Disabled"
    n.add_endpoint(world, w.ACCOUNT_ID, "pv-account", "account", status="Pending")
    w.pv(world)["triggers"] = {"sales-adls/weekly": n.trigger("Disabled")}
    internal = "Internal system error. Please contact support with correlationId:0f1e-22 System Error."
    w.pv(world)["runs"]["sales-adls/weekly"] = [
        w.scan_run("Failed", "2026-11-27T02:00:00Z", error_message=internal),
        w.scan_run("Succeeded", "2026-11-01T02:00:00Z"),
    ]
    return world


async def test_the_network_checks_read_the_sandbox_once_per_url(env: pytest.MonkeyPatch) -> None:
    async with Sandbox(load_world(variant(), rebase_to=NOW)) as sb:
        for key, value in sb.env().items():
            env.setenv(key, value)
        settings = Settings()
        async with azure_clients(settings) as clients:
            facts = Facts(clients.gateways(w.ACCOUNT), w.ACCOUNT)
            report = await diagnose(facts, "sales-adls", checks=CHECKS, docs_base=settings.docs_url, now=NOW)
    by_check = {f.check: f for f in report.findings}
    assert by_check["private-dns"].status is Status.WARN, by_check["private-dns"].detail
    assert "no A record salesadls" in by_check["private-dns"].title
    assert (
        by_check["purview-private"].status is Status.FAIL and "Pending" in by_check["purview-private"].title
    )
    assert by_check["scan-schedule"].status is Status.WARN and "disabled" in by_check["scan-schedule"].title
    made = [r for r in sb.requests if r.host_area != "token" and r.status != 401]
    assert all(r.status == 200 for r in made), [(r.path, r.status) for r in made if r.status != 200]
    paths = [r.path for r in made]
    assert any(p.endswith("/privateEndpoints/pe-dfs/privateDnsZoneGroups") for p in paths)
    assert any(p.endswith("/privatelink.dfs.core.windows.net/A") for p in paths)
    assert any(p.endswith("/privatelink.blob.core.windows.net/virtualNetworkLinks") for p in paths)
    assert any(p.endswith("/scans/weekly/triggers/default") for p in paths)
    twice = [
        k for k, c in Counter((r.method, r.path, str(sorted(r.query.items()))) for r in made).items() if c > 1
    ]
    assert not twice
    doc = report.to_json()["findings"]
    assert {f["docUrl"].split("#")[0] for f in doc} >= {
        "https://learn.microsoft.com/en-us/azure/private-link/private-endpoint-dns",
        "https://learn.microsoft.com/en-us/purview/catalog-private-link-troubleshoot",
    }


async def test_a_scan_without_trigger_is_a_404_the_check_reads_as_no_schedule(
    env: pytest.MonkeyPatch,
) -> None:
    world = w.adls_world()
    async with Sandbox(load_world(world, rebase_to=NOW)) as sb:
        for key, value in sb.env().items():
            env.setenv(key, value)
        settings = Settings()
        async with azure_clients(settings) as clients:
            facts = Facts(clients.gateways(w.ACCOUNT), w.ACCOUNT)
            report = await diagnose(
                facts, "sales-adls", checks=(scan_schedule.CHECK,), docs_base=settings.docs_url, now=NOW
            )
    [f] = report.findings
    assert f.status is Status.SKIPPED and "no schedule" in f.title
    [trigger] = [r for r in sb.requests if r.path.endswith("/triggers/default")]
    assert trigger.status == 404


def test_a_trigger_key_must_name_a_data_source_and_a_scan() -> None:
    world = w.adls_world()
    w.pv(world)["triggers"] = {"sales-adls": n.trigger()}
    with pytest.raises(WorldError, match="DATASOURCE/SCAN"):
        load_world(world)


async def test_every_private_dns_list_pages_and_every_call_names_its_api_version(
    env: pytest.MonkeyPatch,
) -> None:
    """reviewer r12: with one item a page, the A record and the VNet link the check needs are on page 2; the
    sandbox serves nextLink and the stand-in refuses a call without api-version."""
    world = w.adls_world(public="Disabled")
    world["pageSize"] = 1
    n.on_shir(world)
    zone = "privatelink.dfs.core.windows.net"
    other_vnet = f"{n.NET_RG}/providers/Microsoft.Network/virtualNetworks/aaa-other"
    world["resources"] += [n.a_record(zone, "aaa-first", "10.9.9.9"), n.vnet_link(zone, other_vnet)]
    n.add_endpoint(world, w.STORAGE_ID, "pe-dfs", "dfs")
    n.add_endpoint(world, w.STORAGE_ID, "pe-blob", "blob", ip="10.1.0.6")
    async with Sandbox(load_world(world, rebase_to=NOW)) as sb:
        for key, value in sb.env().items():
            env.setenv(key, value)
        settings = Settings()
        async with azure_clients(settings) as clients:
            facts = Facts(clients.gateways(w.ACCOUNT), w.ACCOUNT)
            report = await diagnose(
                facts, "sales-adls", checks=(private_dns.CHECK,), docs_base=settings.docs_url, now=NOW
            )
    [f] = report.findings
    assert f.status is Status.PASS, f.detail
    assert "vnet-scan" in f.detail  # the link on the second page was read
    made = [r for r in sb.requests if r.host_area == "arm" and r.status != 401]
    versions = {
        "/privateDnsZoneGroups": "2023-09-01",
        "/A": "2024-06-01",
        "/virtualNetworkLinks": "2024-06-01",
    }
    for tail, version in versions.items():
        calls = [r for r in made if r.path.endswith(tail)]
        assert calls and all(r.query.get("api-version") == version for r in calls), (tail, calls)
    a_lists = [r for r in made if r.path.endswith(f"/{zone}/A")]
    assert len(a_lists) == 2 and any("$skiptoken" in r.query for r in a_lists)
    assert all(r.query.get("api-version") for r in made)
