"""power-bi: the admin-API tenant settings checklist (warn, never fail on what the bot cannot see), the
group of Purview's identity, cross-tenant authentication and private-network limits."""

from __future__ import annotations

from typing import Any

from checks import sections as s
from checks.catalogue import power_bi
from checks.classify import POWER_BI_ADMIN_API_REFUSED, classify_text
from checks.errors import GatewayError
from checks.model import Finding, Status
from tests.checks import worlds as w
from tests.fakes import FakeWorld

OTHER_TENANT = "99999999-0000-0000-0000-00000000bbbb"


def _world(
    *,
    kind: str = "PowerBIMsi",
    tenant: str = w.TENANT,
    groups: list[str] | None = None,
    public: str = "Enabled",
) -> dict[str, Any]:
    world = w.base_world()
    ds = w.data_source("contoso-pbi", "PowerBI", None, tenant=tenant)
    w.with_source(world, ds, [w.scan("tenant-scan", kind)])
    msi = next(p for p in world["principals"] if p["id"] == w.PURVIEW_MSI)
    msi["memberOf"] = groups if groups is not None else [w.GROUP_OID]
    world["resources"][0]["properties"]["publicNetworkAccess"] = public
    return world


async def _run(world: dict[str, Any], fake: FakeWorld | None = None) -> list[Finding]:
    fake = fake or FakeWorld(world)
    return await power_bi.run(await fake.target("contoso-pbi"))


async def test_same_tenant_msi_is_a_warn_checklist_naming_the_group() -> None:
    [f] = await _run(_world())
    assert f.status is Status.WARN and f.section == s.POWER_BI and f.scan == "tenant-scan"
    assert w.GROUP_OID in f.detail and f.evidence["purviewGroups"] == [w.GROUP_OID]
    assert "app.powerbi.com/admin-portal/tenantSettings" in f.fix[0]
    assert "Service principals can access read-only admin APIs" in f.fix[0]
    assert "Enhance admin APIs responses with detailed metadata" in f.fix[1]
    assert "private links" in f.detail


async def test_the_newest_runs_refusal_is_named_and_stays_a_warn() -> None:
    world = _world()
    error = "Power BI admin API returned 401 Unauthorized: API is not accessible for application"
    w.pv(world)["runs"]["contoso-pbi/tenant-scan"] = [
        w.scan_run("Failed", "2026-11-27T00:00:00Z", error_message=error)
    ]
    [f] = await _run(world)
    assert f.status is Status.WARN and f.detail.startswith("The newest run failed with")
    assert f.evidence["newestRunRefusal"]


async def test_no_group_at_all_adds_the_membership_step() -> None:
    [f] = await _run(_world(groups=[]))
    assert f.status is Status.WARN and "in no security group" in f.detail
    assert f.fix[0].startswith("az ad group member add") and w.PURVIEW_MSI in f.fix[0]


async def test_cross_tenant_with_the_managed_identity_fails() -> None:
    [f] = await _run(_world(tenant=OTHER_TENANT))
    assert f.status is Status.FAIL and "cross-tenant" in f.title
    assert "register-scan-power-bi-tenant-cross-tenant" in f.fix[0]


async def test_cross_tenant_delegated_is_only_a_warn() -> None:
    [f] = await _run(_world(kind="PowerBIDelegated", tenant=OTHER_TENANT))
    assert f.status is Status.WARN and f.evidence["crossTenant"] is True


async def test_a_tenant_given_by_name_is_not_called_cross_tenant() -> None:
    [f] = await _run(_world(tenant="contoso.onmicrosoft.com"))
    assert f.status is Status.WARN and f.evidence["crossTenant"] is False


async def test_private_purview_on_the_azure_runtime_names_the_limit() -> None:
    [f] = await _run(_world(public="Disabled"))
    assert f.status is Status.WARN and "managed VNet runtime (v2) or a self-hosted one" in f.detail


async def test_graph_refused_stays_a_warn_and_says_why() -> None:
    fake = FakeWorld(_world())
    fake.fail["graph.groups"] = GatewayError("list groups", status=403, permission="Application.Read.All")
    [f] = await _run(fake.world, fake)
    assert f.status is Status.WARN and "could not list the groups" in f.detail


async def test_other_sources_are_skipped_without_a_read() -> None:
    fake = FakeWorld(w.adls_world())
    [f] = await power_bi.run(await fake.target("sales-adls"))
    assert f.status is Status.SKIPPED
    assert not [c for c in fake.calls if c.startswith(("graph.", "arm."))]


def test_classifier_sends_admin_api_refusals_to_this_section() -> None:
    text = "Power BI admin API call failed: 401 Unauthorized. API is not accessible for application"
    found = classify_text(text)
    assert found is not None and found.section == s.POWER_BI and found.cause == POWER_BI_ADMIN_API_REFUSED
