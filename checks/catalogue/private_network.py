"""Guide section "Scanning data sources using Private Link": can the scan's runtime reach the source?

The source's network posture (public access, firewall and its exceptions) is set against the runtime the
scan runs on: the Azure IR (`connectedVia` null) reaches only public endpoints; a self-hosted IR reaches
what its network reaches (not visible from Azure); a managed VNet IR reaches a source only through an
*approved* managed private endpoint. Storage's trusted-service bypass and resource-instance rules let in
Purview's *system-assigned* identity only, so they do not help key or service-principal scans.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from checks import sections
from checks.accounts import arm_name
from checks.catalogue.reader_role import scope_of
from checks.check import Check, CheckMeta
from checks.errors import GatewayError
from checks.facts import Facts
from checks.gateways.api import Json
from checks.identity import scan_uses_msi
from checks.model import Finding, Status
from checks.runtimes import scan_runtime_name
from checks.source_kinds import (
    SQL_MI_TYPE,
    SQL_SERVER_TYPE,
    Family,
    SourceKind,
    id_part,
    server_id,
    source_kind,
)
from checks.target import Target

META = CheckMeta(
    id="private-network",
    title="Network path from the scan's runtime to the source",
    sections=(sections.PRIVATE_LINK,),
    description=(
        "The source's network posture (public access, firewall, trusted-service and resource-instance "
        "exceptions) against the scan's runtime (Azure IR, self-hosted, managed VNet with an approved "
        "managed private endpoint); SQL servers denying public access under multi-source registrations."
    ),
)
_NETWORK_FAMILIES = (Family.BLOB, Family.SQL, Family.SYNAPSE, Family.COSMOS)


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
    exception: str | None = None  # what lets Purview's identity through a firewall
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
    if _has_azure_services(acls.get("bypass")):
        return Posture("firewall", "trusted Microsoft services (bypass AzureServices)", ev)
    if rules:
        account_id = str((await facts.account()).get("id", "")).lower().rstrip("/")
        # the portal writes wildcard rules too (`…/resourcegroups/*/providers/Microsoft.Purview/accounts/*`)
        if any(fnmatchcase(account_id, r.lower().rstrip("/")) for r in rules):
            return Posture("firewall", "a resource-instance rule for this Purview account", ev)
    return Posture("firewall", evidence=ev)


def _service_posture(kind: SourceKind, resource: Json) -> Posture:
    """SQL server / managed instance / Synapse / Cosmos DB: public network access on or off."""
    props = resource.get("properties") or {}
    if str(resource.get("type", kind.resource_type)).lower() == SQL_MI_TYPE.lower():
        enabled = props.get("publicDataEndpointEnabled") is True
        ev = {"publicDataEndpointEnabled": props.get("publicDataEndpointEnabled")}
        return Posture("public" if enabled else "private", evidence=ev)
    public = str(props.get("publicNetworkAccess") or "Enabled").lower()
    state = {"disabled": "private", "securedbyperimeter": "perimeter"}.get(public, "public")
    return Posture(state, evidence={"publicNetworkAccess": props.get("publicNetworkAccess")})


async def posture_of(facts: Facts, kind: SourceKind, resource: Json) -> Posture:
    if kind.family is Family.BLOB:
        return await _storage_posture(facts, resource.get("properties") or {})
    return _service_posture(kind, resource)


# --- decisions -----------------------------------------------------------------------------------------


def _private_fixes(kind: SourceKind, rid: str) -> list[str]:
    return [
        "# keep the source private and give Purview a runtime that can reach it, either:",
        "# (a) Purview portal > Data map > Integration runtimes > New > Azure (managed virtual network);",
        f"#     Management > Managed private endpoints > New > target {rid}; approve it on the source;",
        "#     edit the scan: Connect via integration runtime = that managed VNet IR",
        "# (b) a self-hosted IR on a VM that resolves and reaches the source's private endpoint, and a",
        "#     credential (service principal, account key or SQL login in Key Vault) on the scan",
    ]


def _firewall_fixes(rid: str, account_id: str, tenant: str) -> list[str]:
    name, rg = arm_name(rid), id_part(rid, "resourceGroups")
    return [
        f"az storage account network-rule add --resource-group {rg} --account-name {name} "
        f"--resource-id {account_id} --tenant-id {tenant}",
        f"# or allow all trusted Microsoft services: az storage account update --resource-group {rg} "
        f"--name {name} --bypass AzureServices",
    ]


async def _account_ref(facts: Facts) -> tuple[str, str]:
    """The Purview account's ARM id and tenant for fix commands; placeholders when ARM does not say."""
    try:
        account = await facts.account()
    except GatewayError:
        return "<Purview account resource id>", "<tenant id>"
    tenant = (account.get("identity") or {}).get("tenantId") or "<tenant id>"
    return str(account.get("id") or "<Purview account resource id>"), str(tenant)


async def _managed(facts: Facts, scan: str, rt: Runtime, rid: str, ev: dict[str, Any]) -> Finding:
    endpoints = await facts.managed_private_endpoints(rt.vnet or "default")
    wanted = rid.lower().rstrip("/")
    match = next(
        (
            e
            for e in endpoints
            if str((e.get("properties") or {}).get("privateLinkResourceId", "")).lower().rstrip("/") == wanted
        ),
        None,
    )
    props = (match or {}).get("properties") or {}
    status = str((props.get("connectionState") or {}).get("status") or "")
    ev = {**ev, "managedPrivateEndpoint": {"name": (match or {}).get("name"), "status": status or None}}
    if match and status.lower() == "approved":
        return META.finding(
            Status.PASS,
            f"Managed private endpoint {match.get('name')} to {arm_name(rid)} is approved",
            detail=f"Scan {scan} runs on managed VNet IR {rt.name}; its endpoint to {rid} is Approved.",
            evidence=ev,
            scan=scan,
        )
    if match:
        return META.finding(
            Status.FAIL,
            f"Managed private endpoint {match.get('name')} to {arm_name(rid)} is {status or 'not approved'}",
            detail=(
                f"Scan {scan} runs on managed VNet IR {rt.name}, which reaches {rid} only through managed "
                f"private endpoint {match.get('name')}; its connection is {status or 'in no state'}, so no "
                "traffic flows. "
                "The source's owner must approve it (source > Networking > Private endpoint connections)."
            ),
            fix=[
                f"az network private-endpoint-connection list --id {rid} "
                "--query \"[?properties.privateLinkServiceConnectionState.status!='Approved']\"",
                "az network private-endpoint-connection approve --id <connection id from the list above> "
                '--description "Purview managed VNet"',
            ],
            evidence=ev,
            scan=scan,
        )
    return META.finding(
        Status.FAIL,
        f"No managed private endpoint to {arm_name(rid)} in managed VNet {rt.vnet}",
        detail=(
            f"Scan {scan} runs on managed VNet IR {rt.name}, which reaches sources only through managed "
            f"private endpoints; none in {rt.vnet} targets {rid}."
        ),
        fix=[
            "# Purview portal > Management > Managed private endpoints > New: pick the source "
            f"{rid}, then approve the endpoint on the source (Networking > Private endpoint connections)",
        ],
        evidence=ev,
        scan=scan,
    )


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
    if p.state == "firewall" and p.exception is None:
        account_id, tenant = await _account_ref(target.facts)
        return META.finding(
            Status.FAIL,
            f"{res}'s firewall denies by default with no exception for Purview (scan {name}, Azure IR)",
            detail=(
                f"{rid} has networkAcls.defaultAction=Deny, no trusted-services bypass and no "
                "resource-instance rule for this Purview account, so the Azure IR is refused "
                "(AuthorizationFailure)."
            ),
            fix=_firewall_fixes(rid, account_id, tenant),
            evidence=ev,
            scan=name,
        )
    if p.state == "firewall" and not scan_uses_msi(scan):
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


async def _decide(target: Target, kind: SourceKind, scan: Json, rid: str) -> Finding:
    name = str(scan.get("name", ""))
    net_id = network_resource_id(kind, rid)
    rt, resource = await asyncio.gather(runtime_of(target.facts, scan), target.facts.resource(net_id))
    p = await posture_of(target.facts, kind, resource)
    ev = {
        "resourceId": net_id,
        "posture": {"state": p.state, "exception": p.exception, **p.evidence},
        "runtime": rt.evidence(),
    }
    if rt.kind == "managed":
        return await _managed(target.facts, name, rt, net_id, ev)
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
                    "# Purview portal > Data map > Sources > the scan > Edit: Credential = one in Key Vault"
                ],
                evidence=ev,
                scan=name,
            )
        return META.finding(
            Status.PASS,
            f"Scan {name} runs on self-hosted IR {rt.name} with a credential",
            detail=(
                f"Whether {rt.name}'s machines reach {net_id} is not visible from Azure; the integration "
                "runtime check covers its health."
            ),
            evidence=ev,
            scan=name,
        )
    return await _azure_ir(target, kind, scan, p, net_id, ev)


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


async def _multi(target: Target, scope: str) -> Finding:
    try:
        servers = await target.facts.list_resources(scope, SQL_SERVER_TYPE)
    except GatewayError as err:
        return META.unknown(f"Could not list the SQL servers in {scope}", err)
    private = [
        str(s.get("id"))
        for s in servers
        if str((s.get("properties") or {}).get("publicNetworkAccess") or "").lower() == "disabled"
    ]
    ev = {"scope": scope, "sqlServers": [str(s.get("id")) for s in servers], "publicAccessDisabled": private}
    if not private:
        return META.finding(
            Status.PASS,
            f"No SQL server in {scope} denies public network access",
            detail=f"{len(servers)} SQL server(s) in the scope; none has public network access disabled.",
            evidence=ev,
        )
    names = ", ".join(arm_name(p) for p in private)
    return META.finding(
        Status.FAIL,
        f"{len(private)} SQL server(s) in {scope} deny public network access: {names}",
        detail=(
            "A multi-source (subscription / resource group) scan fails for Azure SQL databases with 'Deny "
            "public network access'. Register each of these servers as a single data source and scan it "
            "through a managed VNet IR (managed private endpoint) or a self-hosted IR."
        ),
        fix=[
            "# Purview portal > Data map > Sources > Register > Azure SQL Database, for each server:",
            *(f"#   {p}" for p in private),
            "# then New scan on it > Connect via integration runtime = a managed VNet or self-hosted IR",
        ],
        evidence=ev,
    )


async def run(target: Target) -> list[Finding]:
    kind = source_kind(target.source_kind)
    rid = target.resource_id
    if kind is not None and kind.family is Family.MULTI:
        scope = scope_of(target)
        if scope is None:
            return [META.skipped(f"{target.source_name} names no scope", "No resourceId.")]
        return [await _multi(target, scope)]
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
