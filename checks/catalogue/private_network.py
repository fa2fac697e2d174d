"""Guide section "Scanning data sources using Private Link": can the scan's runtime reach the source?

The source's network posture (public access, firewall and its exceptions) is set against the runtime the
scan runs on: the Azure IR (`connectedVia` null) reaches only public endpoints, and through a firewall only
by the exception that service has for Azure (storage: trusted services / resource-instance rules, which let
in Purview's *system-assigned* identity only; SQL and Synapse: the "Allow Azure services and resources"
firewall rule 0.0.0.0–0.0.0.0; Cosmos DB: 0.0.0.0 in `ipRules`, "accept connections from within public
Azure datacenters"); a self-hosted IR reaches what its network reaches (not visible from Azure); a managed
VNet IR reaches a source only through a provisioned, approved managed private endpoint to the sub-resource
the scan reads (judged by `checks.runtimes.judge_endpoints`, shared with integration-runtime).
Multi-source (subscription / resource group) scans are judged on the resource types they cover.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, TypeVar

from checks import fixes, sections
from checks.accounts import arm_name
from checks.catalogue.reader_role import scope_of
from checks.catalogue.scan_history import history
from checks.check import Check, CheckMeta
from checks.classify import classify_run
from checks.errors import GatewayError
from checks.facts import Facts
from checks.gateways.api import Json
from checks.identity import scan_uses_msi
from checks.model import Finding, Status
from checks.runtimes import judge_endpoints, scan_runtime_name, source_needs
from checks.source_kinds import (
    COSMOS_TYPE,
    SQL_MI_TYPE,
    SQL_SERVER_TYPE,
    SYNAPSE_TYPE,
    Family,
    SourceKind,
    id_part,
    server_id,
    source_kind,
)
from checks.target import Target
from checks.words import counted

META = CheckMeta(
    id="private-network",
    title="Network path from the scan's runtime to the source",
    sections=(sections.PRIVATE_LINK,),
    description=(
        "The source's network posture (public access, firewall and its exceptions for Azure: storage "
        "trusted services and resource-instance rules, the SQL / Synapse 'Allow Azure services' rule, "
        "Cosmos DB's Azure-datacenter rule) against the scan's runtime (Azure IR, self-hosted, managed VNet "
        "with a provisioned, approved managed private endpoint to the right sub-resource); SQL servers "
        "denying public access under multi-source scans that cover SQL."
    ),
)
T = TypeVar("T")
_NETWORK_FAMILIES = (Family.BLOB, Family.SQL, Family.SYNAPSE, Family.COSMOS)
AZURE_SERVICES_RULE = "AllowAllWindowsAzureIps"
ANY_IP = "0.0.0.0"


@dataclass(frozen=True)
class Runtime:
    kind: str  # "azure" | "selfhosted" | "managed"
    name: str | None = None
    vnet: str | None = None

    def evidence(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "managedVirtualNetwork": self.vnet}


@dataclass(frozen=True)
class Posture:
    state: str  # "public" | "firewall" | "private" | "perimeter"
    exception: str | None = None  # what lets the Azure IR through a firewall
    msi_only: bool = False  # the exception admits Purview's system-assigned identity only
    evidence: dict[str, Any] = field(default_factory=dict)


async def runtime_of(facts: Facts, scan: Json) -> Runtime:
    """The scan's integration runtime: null `connectedVia` (or the auto-resolve name) = the Azure IR."""
    name = scan_runtime_name(scan)
    if not name:
        return Runtime("azure")
    ir = await facts.integration_runtime(str(name))
    if str(ir.get("kind", "")).lower() == "managed":
        vnet = ((ir.get("properties") or {}).get("managedVirtualNetworkReference") or {}).get("referenceName")
        return Runtime("managed", str(name), str(vnet) if vnet else None)
    return Runtime("selfhosted", str(name))


def network_resource_id(kind: SourceKind, resource_id: str) -> str:
    """The resource carrying the network settings (a SQL database's server)."""
    return server_id(resource_id) if kind.family in (Family.SQL, Family.SYNAPSE) else resource_id.rstrip("/")


def _has_azure_services(bypass: Any) -> bool:
    return "azureservices" in [b.strip().lower() for b in str(bypass or "").split(",")]


async def _quietly(call: Awaitable[T]) -> T | GatewayError:
    """The call's result, or its GatewayError as a value (a read whose failure matters only sometimes)."""
    try:
        return await call
    except GatewayError as error:
        return error


# --- postures --------------------------------------------------------------------------------------------


async def _storage_posture(facts: Facts, props: Json) -> Posture:
    public = props.get("publicNetworkAccess")
    acls = props.get("networkAcls") or {}
    rules = [
        str(r.get("resourceId", "")) for r in acls.get("resourceAccessRules") or [] if isinstance(r, dict)
    ]
    ev = {
        "publicNetworkAccess": public,
        "defaultAction": acls.get("defaultAction"),
        "bypass": acls.get("bypass"),
        "resourceAccessRules": rules,
    }
    if str(public or "").lower() == "disabled":
        return Posture("private", evidence=ev)
    if str(public or "").lower() == "securedbyperimeter":
        return Posture("perimeter", evidence=ev)
    if str(acls.get("defaultAction") or "Allow").lower() != "deny":
        return Posture("public", evidence=ev)
    # trusted services and resource-instance rules admit Purview's system-assigned identity only
    # https://learn.microsoft.com/en-us/azure/storage/common/storage-network-security-trusted-azure-services
    if _has_azure_services(acls.get("bypass")):
        return Posture("firewall", "trusted Microsoft services (bypass AzureServices)", True, ev)
    if rules:
        account_id = str((await facts.account()).get("id", "")).lower().rstrip("/")
        # the portal writes wildcard rules too (`…/resourcegroups/*/providers/Microsoft.Purview/accounts/*`)
        if any(fnmatchcase(account_id, r.lower().rstrip("/")) for r in rules):
            return Posture("firewall", "a resource-instance rule for this Purview account", True, ev)
    return Posture("firewall", evidence=ev)


def _service_posture(kind: SourceKind, resource: Json) -> Posture:
    """SQL server / managed instance / Synapse: public network access on or off (the firewall rules, read
    only for the Azure IR, refine an open one in `_with_firewall_rules`)."""
    props = resource.get("properties") or {}
    if str(resource.get("type", kind.resource_type)).lower() == SQL_MI_TYPE.lower():
        enabled = props.get("publicDataEndpointEnabled") is True
        ev = {"publicDataEndpointEnabled": props.get("publicDataEndpointEnabled")}
        return Posture("public" if enabled else "private", evidence=ev)
    public = str(props.get("publicNetworkAccess") or "Enabled").lower()
    state = {"disabled": "private", "securedbyperimeter": "perimeter"}.get(public, "public")
    return Posture(state, evidence={"publicNetworkAccess": props.get("publicNetworkAccess")})


def cosmos_ip_rules(props: Json) -> list[str]:
    """Cosmos DB's IP firewall: `ipRules[].ipAddressOrRange` (older api-versions: `ipRangeFilter`)."""
    rules = [
        str(r.get("ipAddressOrRange") or "").strip()
        for r in props.get("ipRules") or []
        if isinstance(r, dict) and r.get("ipAddressOrRange")
    ]
    legacy = [r.strip() for r in str(props.get("ipRangeFilter") or "").split(",") if r.strip()]
    return list(dict.fromkeys(rules + legacy))


def _cosmos_posture(resource: Json) -> Posture:
    """Cosmos DB with IP filtering (`ipRules`, or the VNet filter) admits the Azure IR only with 0.0.0.0 in
    `ipRules`, the portal's "Accept connections from within public Azure datacenters".
    https://learn.microsoft.com/en-us/azure/cosmos-db/how-to-configure-firewall#allow-requests-from-global-azure-datacenters-or-other-sources-within-azure
    """
    props = resource.get("properties") or {}
    public = str(props.get("publicNetworkAccess") or "Enabled").lower()
    rules = cosmos_ip_rules(props)
    vnet_filter = props.get("isVirtualNetworkFilterEnabled") is True
    ev = {
        "publicNetworkAccess": props.get("publicNetworkAccess"),
        "ipRules": rules,
        "isVirtualNetworkFilterEnabled": props.get("isVirtualNetworkFilterEnabled"),
    }
    if public == "disabled":
        return Posture("private", evidence=ev)
    if public == "securedbyperimeter":
        return Posture("perimeter", evidence=ev)
    if not rules and not vnet_filter:
        return Posture("public", evidence=ev)
    if ANY_IP in rules:
        exception = "the rule 'Accept connections from within public Azure datacenters' (0.0.0.0)"
        return Posture("firewall", exception, evidence=ev)
    return Posture("firewall", evidence=ev)


def _ip(value: Any) -> tuple[int, ...] | None:
    parts = str(value or "").strip().split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        return None
    return tuple(int(p) for p in parts)


def _with_firewall_rules(p: Posture, rules: list[Json]) -> Posture:
    """A SQL server's / Synapse workspace's open posture, refined by its firewall rules for the Azure IR.

    With public access enabled a server still refuses every address its firewall does not list: the Azure
    IR gets in through the rule "Allow Azure services and resources to access this server", a rule with
    start = end = 0.0.0.0 (the portal names it AllowAllWindowsAzureIps; any name counts), or a rule
    spanning every address.
    https://learn.microsoft.com/en-us/azure/azure-sql/database/firewall-configure#connections-from-inside-azure
    https://learn.microsoft.com/en-us/azure/azure-sql/database/network-access-controls-overview#allow-azure-services
    https://learn.microsoft.com/en-us/azure/synapse-analytics/security/synapse-workspace-ip-firewall
    """
    listed = [
        {
            "name": r.get("name"),
            "startIpAddress": (r.get("properties") or {}).get("startIpAddress"),
            "endIpAddress": (r.get("properties") or {}).get("endIpAddress"),
        }
        for r in rules
    ]
    ev = {**p.evidence, "firewallRules": listed}
    azure = next((r for r in listed if r["startIpAddress"] == ANY_IP and r["endIpAddress"] == ANY_IP), None)
    if azure is not None:
        exception = f"the 'Allow Azure services and resources' firewall rule {azure['name']} (0.0.0.0)"
        return Posture("firewall", exception, evidence=ev)
    everything = next(
        (
            r
            for r in listed
            if _ip(r["startIpAddress"]) == (0, 0, 0, 0) and _ip(r["endIpAddress"]) == (255,) * 4
        ),
        None,
    )
    if everything is not None:
        return Posture(
            "firewall", f"firewall rule {everything['name']}, which admits every address", evidence=ev
        )
    return Posture("firewall", evidence=ev)


def _reads_firewall_rules(kind: SourceKind) -> bool:
    return kind.resource_type in (SQL_SERVER_TYPE, SYNAPSE_TYPE)


async def posture_of(facts: Facts, kind: SourceKind, resource: Json) -> Posture:
    if kind.family is Family.BLOB:
        return await _storage_posture(facts, resource.get("properties") or {})
    if kind.resource_type == COSMOS_TYPE:
        return _cosmos_posture(resource)
    return _service_posture(kind, resource)


# --- decisions -----------------------------------------------------------------------------------------


def _private_fixes(kind: SourceKind, rid: str) -> list[str]:
    return [
        "Keep the source private and give Purview a runtime that can reach it, (a) or (b):",
        f"(a) In the Purview portal ({fixes.PURVIEW_PORTAL}): Data map > Integration runtimes > New > Azure "
        f"(managed virtual network); Management > Managed private endpoints > New, target {arm_name(rid)}; "
        "approve it on the source; edit the scan: Connect via integration runtime = that managed VNet IR.",
        "(b) A self-hosted IR on a VM that resolves and reaches the source's private endpoint, and a "
        "credential (service principal, account key or SQL login in Key Vault) on the scan "
        "(https://learn.microsoft.com/en-us/purview/manage-integration-runtimes).",
    ]


def _storage_firewall_fixes(rid: str, account_id: str, tenant: str) -> list[str]:
    name, rg = arm_name(rid), id_part(rid, "resourceGroups")
    return [
        fixes.wrap(
            f"az storage account network-rule add --resource-group {rg} --account-name {name} "
            f"--resource-id {account_id} --tenant-id {tenant}"
        ),
        "Or allow all trusted Microsoft services:",
        fixes.wrap(f"az storage account update --resource-group {rg} --name {name} --bypass AzureServices"),
    ]


def _service_firewall_fixes(kind: SourceKind, rid: str, ip_rules: list[str]) -> list[str]:
    """The service's own "allow Azure" switch (or a runtime that does not need it)."""
    name, rg = arm_name(rid), id_part(rid, "resourceGroups")
    other = "Or keep the firewall closed and scan through a managed VNet IR or a self-hosted IR."
    if kind.resource_type == COSMOS_TYPE:
        # --ip-range-filter replaces the whole list: keep the existing ranges
        ranges = ",".join([*ip_rules, ANY_IP])
        return [
            fixes.wrap(
                f'az cosmosdb update --resource-group {rg} --name {name} --ip-range-filter "{ranges}"'
            ),
            other,
        ]
    if kind.resource_type == SYNAPSE_TYPE:
        return [
            fixes.wrap(
                f"az synapse workspace firewall-rule create --resource-group {rg} --workspace-name {name} "
                f"--name {AZURE_SERVICES_RULE} --start-ip-address {ANY_IP} --end-ip-address {ANY_IP}"
            ),
            other,
        ]
    return [
        fixes.wrap(
            f"az sql server firewall-rule create -g {rg} -s {name} -n {AZURE_SERVICES_RULE} "
            f"--start-ip-address {ANY_IP} --end-ip-address {ANY_IP}"
        ),
        other,
    ]


async def _account_ref(facts: Facts) -> tuple[str, str]:
    """The Purview account's ARM id and tenant for fix commands; placeholders when ARM does not say."""
    try:
        account = await facts.account()
    except GatewayError:
        return "<Purview account resource id>", "<tenant id>"
    tenant = (account.get("identity") or {}).get("tenantId") or "<tenant id>"
    return str(account.get("id") or "<Purview account resource id>"), str(tenant)


async def _managed(
    target: Target, kind: SourceKind, scan: str, rt: Runtime, rid: str, ev: dict[str, Any]
) -> Finding:
    """The managed VNet IR reaches the source only through managed private endpoints, judged per target
    sub-resource, provisioning and approval by the function integration-runtime uses too.
    https://learn.microsoft.com/en-us/purview/catalog-managed-vnet
    """
    endpoints = await target.facts.managed_private_endpoints(rt.vnet or "default")
    res = arm_name(rid)
    j = judge_endpoints(endpoints, rid, res, source_needs(kind.kind))
    ev = {**ev, "managedPrivateEndpoints": j.evidence()}
    where = f"managed VNet IR {rt.name} (managed VNet {rt.vnet})"
    if not j.has_endpoints:
        return META.finding(
            Status.FAIL,
            f"No managed private endpoint to {res} in managed VNet {rt.vnet}",
            detail=(
                f"Scan {scan} runs on {where}, which reaches sources only through managed private "
                f"endpoints; none targets {rid}."
            ),
            fix=j.fix,
            evidence=ev,
            scan=scan,
        )
    if j.status is Status.PASS:
        return META.finding(
            Status.PASS,
            f"Managed private endpoint to {res} is approved for scan {scan}",
            detail=f"Scan {scan} runs on {where}: {', '.join(j.sentences)}.",
            evidence=ev,
            scan=scan,
        )
    return META.finding(
        j.status,
        f"{res} through managed VNet IR {rt.name}: {j.problems[0]}",
        detail=(
            f"Scan {scan} runs on {where}, which reaches {rid} only through a provisioned, Approved managed "
            f"private endpoint to the sub-resource the scan reads: {'; '.join(j.problems)}."
        ),
        fix=j.fix,
        evidence=ev,
        scan=scan,
    )


async def _corroboration(target: Target, scan: str) -> tuple[str, dict[str, Any]]:
    """The newest finished run's error, when it names a network cause (e.g. 40615); ('', {}) otherwise."""
    try:
        runs = await target.facts.runs(target.source_name, scan)
    except GatewayError:
        return "", {}
    newest = history(runs).last
    found = classify_run(newest) if newest is not None else None
    if newest is None or found is None or found.section != sections.PRIVATE_LINK:
        return "", {}
    sentence = f" The newest run failed with '{found.matched}' ({found.reason}), which is this cause."
    return sentence, {"runError": found.matched, "runId": newest.get("id")}


async def _azure_ir(
    target: Target, kind: SourceKind, scan: Json, p: Posture, rid: str, ev: dict[str, Any]
) -> Finding:
    name, res = str(scan.get("name", "")), arm_name(rid)
    if p.state == "private":
        return META.finding(
            Status.FAIL,
            f"{res} denies public network access, but scan {name} runs on the Azure IR",
            detail=(
                f"Public network access to {rid} is disabled, so only private endpoints reach it; the Azure "
                "integration runtime has none. Use a managed VNet IR with an approved managed private "
                "endpoint, or a self-hosted IR with a credential."
            ),
            fix=_private_fixes(kind, rid),
            evidence=ev,
            scan=name,
        )
    if p.state == "perimeter":
        return META.finding(
            Status.WARN,
            f"{res} is secured by a network security perimeter",
            detail=(
                f"Access to {rid} follows its network security perimeter's rules, which the bot does not "
                "read; Purview must be allowed by them for the Azure IR to reach it."
            ),
            evidence=ev,
            scan=name,
        )
    if p.state == "firewall" and p.exception is None and kind.family is Family.BLOB:
        account_id, tenant = await _account_ref(target.facts)
        return META.finding(
            Status.FAIL,
            f"{res}'s firewall denies by default with no exception for Purview (scan {name}, Azure IR)",
            detail=(
                f"{rid} has networkAcls.defaultAction=Deny, no trusted-services bypass and no "
                "resource-instance rule for this Purview account, so the Azure IR is refused "
                "(AuthorizationFailure)."
            ),
            fix=_storage_firewall_fixes(rid, account_id, tenant),
            evidence=ev,
            scan=name,
        )
    if p.state == "firewall" and p.exception is None:
        return await _service_firewall(target, kind, name, rid, ev)
    if p.state == "firewall" and p.msi_only and not scan_uses_msi(scan):
        return META.finding(
            Status.WARN,
            f"{res}'s firewall lets in Purview's managed identity only, but scan {name} uses a credential",
            detail=(
                f"{p.exception} admits Purview only when it signs in with its system-assigned identity; scan "
                f"{name} uses a credential, which the firewall refuses from the Azure IR. Switch the scan to "
                "the managed identity, or run it on a self-hosted / managed VNet IR."
            ),
            evidence=ev,
            scan=name,
        )
    extra = f" through {p.exception}" if p.exception else ""
    return META.finding(
        Status.PASS,
        f"The Azure IR can reach {res}{extra}",
        detail=f"Scan {name} runs on the Azure IR and {rid} accepts it{extra}.",
        evidence=ev,
        scan=name,
    )


async def _service_firewall(
    target: Target, kind: SourceKind, name: str, rid: str, ev: dict[str, Any]
) -> Finding:
    """SQL / Synapse / Cosmos DB open to the internet but not to Azure: the Azure IR is refused (SQL error
    40615 "Client with IP address '…' is not allowed to access the server"). Purview's connector pages ask
    for the "Allow Azure services" switch for the Azure IR:
    https://learn.microsoft.com/en-us/purview/register-scan-azure-sql-database#firewall-settings
    https://learn.microsoft.com/en-us/purview/register-scan-synapse-workspace
    https://learn.microsoft.com/en-us/purview/register-scan-azure-cosmos-database
    """
    res = arm_name(rid)
    p_ev = ev["posture"]
    if kind.resource_type == COSMOS_TYPE:
        what = (
            f"{rid} filters by IP (ipRules {p_ev.get('ipRules') or '[]'}, VNet filter "
            f'{p_ev.get("isVirtualNetworkFilterEnabled")}) without 0.0.0.0, "Accept connections from within '
            'public Azure datacenters"'
        )
        title = f"{res}'s firewall does not accept Azure datacenters, but scan {name} runs on the Azure IR"
        refusal = (
            "403: 'Request originated from IP … through public internet. This is blocked by your Cosmos DB "
            "account firewall settings'"
        )
    else:
        noun = "workspace" if kind.resource_type == SYNAPSE_TYPE else "server"
        what = (
            f'{rid} allows public network access but its firewall has no rule 0.0.0.0–0.0.0.0 ("Allow Azure '
            f'services and resources to access this {noun}", {AZURE_SERVICES_RULE}) and none spanning every '
            "address"
        )
        title = f"{res} has no 'Allow Azure services' firewall rule, but scan {name} runs on the Azure IR"
        refusal = "SQL error 40615: 'Client with IP address … is not allowed to access the server'"
    corroborated, run_ev = await _corroboration(target, name)
    return META.finding(
        Status.FAIL,
        title,
        detail=f"{what}, so the Azure integration runtime is refused ({refusal}).{corroborated}",
        fix=_service_firewall_fixes(kind, rid, list(p_ev.get("ipRules") or [])),
        evidence={**ev, **run_ev},
        scan=name,
    )


async def _decide(target: Target, kind: SourceKind, scan: Json, rid: str) -> Finding:
    name = str(scan.get("name", ""))
    net_id = network_resource_id(kind, rid)
    on_azure_ir = scan_runtime_name(scan) is None
    # the firewall rules matter only to the Azure IR: read them beside the resource, not after it
    rules_read = (
        _quietly(target.facts.children(net_id, "firewallRules"))
        if on_azure_ir and _reads_firewall_rules(kind)
        else _nothing()
    )
    rt, resource, rules = await asyncio.gather(
        runtime_of(target.facts, scan), target.facts.resource(net_id), rules_read
    )
    p = await posture_of(target.facts, kind, resource)
    ev: dict[str, Any] = {"resourceId": net_id, "runtime": rt.evidence()}
    if rt.kind == "azure" and p.state == "public" and _reads_firewall_rules(kind):
        if isinstance(rules, GatewayError):
            ev["posture"] = {"state": p.state, **p.evidence}
            return META.unknown(
                f"Could not read the firewall rules of {arm_name(net_id)} (scan {name}, Azure IR)",
                rules,
                scan=name,
                evidence=ev,
            )
        p = _with_firewall_rules(p, rules or [])
    ev["posture"] = {"state": p.state, "exception": p.exception, **p.evidence}
    if rt.kind == "managed":
        return await _managed(target, kind, name, rt, net_id, ev)
    if rt.kind == "selfhosted":
        if scan_uses_msi(scan):
            return META.finding(
                Status.WARN,
                f"Scan {name} uses Purview's managed identity on self-hosted IR {rt.name}",
                detail=(
                    "With a self-hosted integration runtime the guide asks for a credential (service "
                    "principal, account key or SQL login stored in Key Vault): the managed identity is not "
                    "supported there."
                ),
                fix=[
                    f"In the Purview portal ({fixes.PURVIEW_PORTAL}): Data map > Sources > the scan > Edit: "
                    "Credential = one in Key Vault."
                ],
                evidence=ev,
                scan=name,
            )
        return META.finding(
            Status.PASS,
            f"Scan {name} runs on self-hosted IR {rt.name} with a credential",
            detail=(
                f"Whether {rt.name}'s machines reach {net_id} is not visible from Azure; the integration "
                "runtime check covers its health. The source's 'Allow Azure services' switch does not "
                "concern this runtime."
            ),
            evidence=ev,
            scan=name,
        )
    return await _azure_ir(target, kind, scan, p, net_id, ev)


async def _nothing() -> list[Json] | None:
    return None


async def _one(target: Target, kind: SourceKind, scan: Json, rid: str) -> Finding:
    name = str(scan.get("name", ""))
    try:
        return await _decide(target, kind, scan, rid)
    except GatewayError as err:
        return META.unknown(
            f"Could not check the network path of scan {name} to {target.source_name}",
            err,
            scan=name,
            evidence={"resourceId": rid},
        )


# --- multi-source registrations ----------------------------------------------------------------------
#
# "Scanning multiple data sources which contain databases as Azure SQL database with Deny public network
# access, would fail" (the guide, scanning-data-sources-using-private-link). A subscription / resource
# group scan expands only to the resource types it lists (`properties.resourceTypes`, keyed by data source
# type; the spec spells the keys `azureSqlDatabase`, portal-made scans `AzureSqlDatabase`):
# https://learn.microsoft.com/en-us/rest/api/purview/scanningdataplane/scans/create-or-replace
# so the rule applies only to a scan that covers Azure SQL Database (or dedicated SQL pools on a server).
SQL_RESOURCE_TYPES = frozenset({"azuresqldatabase", "azuresqldatawarehouse"})


def _norm(value: Any) -> str:
    return "".join(ch for ch in str(value or "").lower() if ch.isalnum())


@dataclass(frozen=True)
class Coverage:
    """Whether a multi-source scan covers Azure SQL: True / False, or None when it lists no types."""

    covers_sql: bool | None
    types: list[str]
    name_filter: Any = None  # the SQL entry's resourceNameFilter, when it narrows the servers


def coverage(scan: Json) -> Coverage:
    types = (scan.get("properties") or {}).get("resourceTypes")
    if not isinstance(types, dict) or not types:
        return Coverage(None, [])
    listed = [str(k) for k, v in types.items() if v is not None]
    sql = [types[k] for k in listed if _norm(k) in SQL_RESOURCE_TYPES]
    narrowing = next(
        (
            f
            for entry in sql
            if isinstance(entry, dict) and (f := entry.get("resourceNameFilter")) and _narrows(f)
        ),
        None,
    )
    return Coverage(bool(sql), listed, narrowing)


def _narrows(name_filter: Any) -> bool:
    if not isinstance(name_filter, dict):
        return False
    return any(name_filter.get(k) for k in ("resources", "includePrefixes", "excludePrefixes"))


def _servers_evidence(scope: str, servers: list[Json], private: list[str], cov: Coverage) -> dict[str, Any]:
    return {
        "scope": scope,
        "resourceTypes": cov.types,
        "coversSql": cov.covers_sql,
        "sqlServers": [str(s.get("id")) for s in servers],
        "publicAccessDisabled": private,
    }


def _multi_scan(scope: str, scan: str, cov: Coverage, servers: list[Json] | GatewayError) -> Finding:
    if cov.covers_sql is False:
        return META.skipped(
            f"Scan {scan} does not cover Azure SQL Database",
            f"Its resource types are {', '.join(cov.types)}: SQL servers denying public network access do "
            "not concern it.",
            scan=scan,
        )
    if isinstance(servers, GatewayError):
        return META.unknown(f"Could not list the SQL servers in {scope}", servers, scan=scan)
    private = [
        str(s.get("id"))
        for s in servers
        if str((s.get("properties") or {}).get("publicNetworkAccess") or "").lower() == "disabled"
    ]
    ev = _servers_evidence(scope, servers, private, cov)
    all_servers, closed = counted(len(servers), "SQL server"), counted(len(private), "SQL server")
    if not private:
        return META.finding(
            Status.PASS,
            f"Scan {scan}: {all_servers} in {scope}, all allowing public network access",
            detail=f"{all_servers} in the scope of scan {scan}; none has public network access disabled.",
            evidence=ev,
            scan=scan,
        )
    names = ", ".join(arm_name(p) for p in private)
    fix = [
        f"In the Purview portal ({fixes.PURVIEW_PORTAL}): Data map > Sources > Register > Azure SQL "
        f"Database, for each server ({names}), then New scan on it > Connect via integration runtime = a "
        "managed VNet or self-hosted IR."
    ]
    why = (
        "A multi-source (subscription / resource group) scan fails for Azure SQL databases with 'Deny public "
        "network access'. Register each of these servers as a single data source and scan it through a "
        "managed VNet IR (managed private endpoint) or a self-hosted IR."
    )
    if cov.covers_sql is None:
        return META.finding(
            Status.WARN,
            f"Scan {scan} lists no resource types; {closed} in {scope} with public "
            f"network access denied: {names}",
            detail=f"The scan does not say which resource types it covers. If it covers Azure SQL: {why}",
            fix=fix,
            evidence=ev,
            scan=scan,
        )
    if cov.name_filter is not None:
        return META.finding(
            Status.WARN,
            f"{closed} in {scope} with public network access denied: {names} (scan {scan} "
            "filters SQL resources by name)",
            detail=(
                "The scan narrows its SQL resources with a resourceNameFilter the bot does not evaluate. If "
                f"it includes these servers: {why}"
            ),
            fix=fix,
            evidence={**ev, "resourceNameFilter": cov.name_filter},
            scan=scan,
        )
    return META.finding(
        Status.FAIL,
        f"{closed} in {scope} with public network access denied: {names}",
        detail=f"Scan {scan} covers Azure SQL Database ({', '.join(cov.types)}). {why}",
        fix=fix,
        evidence=ev,
        scan=scan,
    )


async def _multi(target: Target, scope: str) -> list[Finding]:
    covers = {str(s.get("name", "")): coverage(s) for s in target.scans}
    needed = any(c.covers_sql is not False for c in covers.values())
    servers: list[Json] | GatewayError = (
        await _quietly(target.facts.list_resources(scope, SQL_SERVER_TYPE)) if needed else []
    )
    return [_multi_scan(scope, name, cov, servers) for name, cov in covers.items()]


async def run(target: Target) -> list[Finding]:
    kind = source_kind(target.source_kind)
    rid = target.resource_id
    if kind is not None and kind.family is Family.MULTI:
        scope = scope_of(target)
        if scope is None:
            return [META.skipped(f"{target.source_name} names no scope", "No resourceId.")]
        if not target.scans:
            return META.nothing_to_check(target, "scan")
        return await _multi(target, scope)
    if kind is None or kind.family not in _NETWORK_FAMILIES:
        return [
            META.skipped(
                f"Network path not checked for source kind {target.source_kind}",
                "The bot has no network rule for this kind.",
            )
        ]
    if not rid or not target.scans:
        return META.nothing_to_check(target, "runtime")
    return list(await asyncio.gather(*(_one(target, kind, s, rid) for s in target.scans)))


CHECK = Check(meta=META, run=run)
