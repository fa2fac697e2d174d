"""A private Purview account and the self-hosted runtimes that scan for it (issue 12, beyond the guide).

With the account's public network access disabled, a self-hosted integration runtime reaches Purview only
through the account's private endpoints: `account` (the account's endpoint, which the runtime talks to) and
`portal` (the governance portal, for people; Microsoft asks for it beside `account`), and the *ingestion*
private endpoints through which scan results flow: on accounts with managed resources (created before
December 2023), endpoints to the managed storage account (`blob`, `queue`) and the managed Event Hubs
namespace (`namespace`), which matter when `managedResourcesPublicNetworkAccess` is Disabled. The runtime's
machines must be in the VNet of the ingestion endpoints. The usual symptom on such a runtime is
"Internal system error … correlationId".
https://learn.microsoft.com/en-us/purview/catalog-private-link-troubleshoot
https://learn.microsoft.com/en-us/purview/catalog-private-link-end-to-end

Read: the account (`publicNetworkAccess`, `managedResourcesPublicNetworkAccess`, `managedResources`,
`privateEndpointConnections`, already read for its identity), each endpoint's sub-resources (an endpoint
GET: Purview's connections do not carry group ids), and, when the managed resources are closed, the
managed storage account's and Event Hubs namespace's connections. Accounts without managed resources
(ingestion storage owned by Microsoft) publish no ingestion connection the bot can read at api-version
2021-12-01: that part is a `warn` with what to verify in the portal.
"""

from __future__ import annotations

import asyncio
from typing import Any

from checks import sections
from checks.accounts import arm_name
from checks.catalogue.private_dns import Verdict
from checks.catalogue.scan_history import history
from checks.check import Check, CheckMeta
from checks.classify import SHIR_CANNOT_REACH_PURVIEW, classify_run
from checks.errors import GatewayError
from checks.gateways.api import Json
from checks.model import Finding, Status
from checks.private_endpoints import Endpoint, read_endpoints
from checks.runtimes import scan_runtime_name
from checks.target import Target
from checks.words import plural

META = CheckMeta(
    id="purview-private",
    title="Private Purview account and its self-hosted runtimes",
    sections=(sections.PURVIEW_PRIVATE, sections.SCANS_NO_LONGER_RUN),
    description=(
        "When the Purview account's public network access is disabled, scans on a self-hosted runtime need "
        "the account's Approved `account` private endpoint (and `portal` beside it), and, on accounts with "
        "managed resources closed to the public, ingestion endpoints to the managed storage (blob, queue) "
        "and Event Hubs namespace; the runtime's machines in the ingestion endpoints' VNet."
    ),
)


def _disabled(value: Any) -> bool:
    return str(value or "").strip().lower() == "disabled"


def _approve(e: Endpoint) -> list[str]:
    return [
        "az network private-endpoint-connection approve \\\n"
        f"  --id {e.connection.id or '<connection id>'} \\\n"
        '  --description "Purview self-hosted runtime"'
    ]


def _portal_step(account: str, what: str) -> str:
    return (
        f"Azure portal > Microsoft Purview account {account} > Networking > {what}: add it in the VNet of "
        "the self-hosted runtime's machines (https://portal.azure.com/#browse/Microsoft.Purview%2FAccounts)."
    )


def _by_group(endpoints: list[Endpoint], group: str) -> list[Endpoint]:
    return [e for e in endpoints if e.serves(group)]


def _judge_group(
    v: Verdict, endpoints: list[Endpoint], group: str, label: str, account: str, *, required: bool
) -> list[Endpoint]:
    """One sub-resource of the account: Approved (pass), not approved (fail when required), or missing."""
    serving = _by_group(endpoints, group)
    approved = [e for e in serving if e.connection.approved]
    if approved:
        v.add(Status.PASS, f"{label} private endpoint {approved[0].connection.endpoint_name} is Approved")
        return approved
    # an endpoint whose sub-resources the bot cannot see (foreign, unreadable, or naming none) may serve it
    unreadable = [e for e in endpoints if e.foreign or isinstance(e.resource, GatewayError) or not e.groups]
    # an Approved endpoint the bot cannot read may be the one serving it: then a Pending one is no proof
    hidden = [e.connection.endpoint_name for e in unreadable if e.connection.approved]
    if serving:
        for e in serving:
            also = (
                f"; Approved {plural(len(hidden), 'endpoint')} {', '.join(hidden)} could not be read and "
                "may serve it"
                if hidden
                else ""
            )
            v.add(
                Status.FAIL if required and not hidden else Status.WARN,
                f"{label} private endpoint {e.connection.endpoint_name} is "
                f"{e.connection.status or 'not approved'}{also}",
                _approve(e),
            )
    elif unreadable and any(e.connection.approved for e in unreadable):
        names = ", ".join(e.connection.endpoint_name for e in unreadable)
        v.add(
            Status.WARN,
            f"no readable {label} private endpoint; Approved {plural(len(unreadable), 'endpoint')} {names} "
            "could not be read to see their sub-resource",
        )
    else:
        v.add(
            Status.FAIL if required else Status.WARN,
            f"no {label} private endpoint (sub-resource {group}) on account {account}",
            [
                _portal_step(
                    account, f"Private endpoint connections > + Private endpoint, sub-resource {group}"
                )
            ],
        )
    return []


async def _ingestion(
    target: Target, v: Verdict, props: Json, account: str
) -> tuple[list[Endpoint], dict[str, Any]]:
    """Ingestion endpoints on the managed storage (blob, queue) and Event Hubs namespace (namespace)."""
    managed = props.get("managedResources") or {}
    closed = _disabled(props.get("managedResourcesPublicNetworkAccess"))
    ev: dict[str, Any] = {
        "managedResources": managed or None,
        "managedResourcesPublicNetworkAccessDisabled": closed,
    }
    targets: list[tuple[str, tuple[str, ...]]] = []
    if managed.get("storageAccount"):
        targets.append((str(managed["storageAccount"]), ("blob", "queue")))
    hub_off = str(props.get("managedEventHubState") or "").lower() == "disabled"
    if managed.get("eventHubNamespace") and not hub_off:
        targets.append((str(managed["eventHubNamespace"]), ("namespace",)))
    if not targets:
        if _disabled(props.get("publicNetworkAccess")):
            v.add(
                Status.WARN,
                f"account {account} has no managed resources: its ingestion private endpoints are not "
                "readable from Azure Resource Manager; verify they exist and are Approved",
                [
                    f"Azure portal > Microsoft Purview account {account} > Networking > Ingestion private "
                    "endpoints: check that they exist, are Approved and sit in the VNet of the self-hosted "
                    "runtime's machines (https://portal.azure.com/#browse/Microsoft.Purview%2FAccounts)."
                ],
            )
        return [], ev
    if not closed:
        ev["ingestion"] = "managed resources accept public network access"
        return [], ev

    async def read(rid: str) -> Json | GatewayError:
        try:
            return await target.facts.resource(rid)
        except GatewayError as error:
            return error

    resources = await asyncio.gather(*(read(rid) for rid, _ in targets))
    found: list[Endpoint] = []
    for (rid, groups), res in zip(targets, resources, strict=True):
        if isinstance(res, GatewayError):
            v.add(Status.UNKNOWN, f"could not read managed resource {arm_name(rid)} ({res.reason})")
            continue
        endpoints = await read_endpoints(target.facts, res)
        found += endpoints
        for group in groups:
            _judge_group(v, endpoints, group, f"ingestion ({arm_name(rid)} {group})", account, required=True)
    ev["ingestionEndpoints"] = [e.evidence() for e in found]
    return found, ev


async def _corroboration(target: Target, scans: list[str]) -> str:
    for scan in scans:
        try:
            runs = await target.facts.runs(target.source_name, scan)
        except GatewayError:
            continue
        newest = history(runs).last
        found = classify_run(newest) if newest is not None else None
        if found is not None and found.cause == SHIR_CANNOT_REACH_PURVIEW:
            return (
                f" The newest run of scan {scan} failed with '{found.matched}', this setup's usual symptom."
            )
    return ""


async def _self_hosted_scans(target: Target) -> list[tuple[str, str]] | GatewayError:
    named = [(str(s.get("name", "")), ir) for s in target.scans if (ir := scan_runtime_name(s)) is not None]
    try:
        runtimes = await asyncio.gather(*(target.facts.integration_runtime(ir) for _, ir in named))
    except GatewayError as error:
        return error
    return [
        (scan, ir)
        for (scan, ir), rt in zip(named, runtimes, strict=True)
        if str(rt.get("kind", "")).lower() != "managed"
    ]


async def run(target: Target) -> list[Finding]:
    if not target.scans:
        return [META.skipped(f"{target.source_name} has no scans", "No runtime to check.")]
    shir = await _self_hosted_scans(target)
    if isinstance(shir, GatewayError):
        return [META.unknown("Could not read a scan's integration runtime", shir)]
    if not shir:
        return [
            META.skipped(
                f"No scan of {target.source_name} runs on a self-hosted integration runtime",
                "Only self-hosted runtimes need the account's private endpoints.",
            )
        ]
    try:
        account = await target.facts.account()
    except GatewayError as error:
        return [META.unknown(f"Could not read Purview account {target.account_name} from ARM", error)]
    props = account.get("properties") or {}
    name = str(account.get("name") or target.account_name)
    scans = [s for s, _ in shir]
    runtimes = sorted({ir for _, ir in shir})
    scan = scans[0] if len(scans) == 1 else None
    public_off = _disabled(props.get("publicNetworkAccess"))
    v = Verdict()
    endpoints: list[Endpoint] = []
    if public_off:
        endpoints = await read_endpoints(target.facts, account)
        _judge_group(v, endpoints, "account", "account", name, required=True)
        _judge_group(v, endpoints, "portal", "portal", name, required=False)
    ingestion, ing_ev = await _ingestion(target, v, props, name)
    evidence: dict[str, Any] = {
        "account": account.get("id"),
        "publicNetworkAccess": props.get("publicNetworkAccess"),
        "managedResourcesPublicNetworkAccess": props.get("managedResourcesPublicNetworkAccess"),
        "selfHostedRuntimes": runtimes,
        "accountEndpoints": [e.evidence() for e in endpoints],
        **ing_ev,
    }
    vnets = sorted({e.vnet for e in ingestion if e.vnet and e.connection.approved})
    where = ", ".join(runtimes)
    if not v.items:
        return [
            META.finding(
                Status.PASS,
                f"Purview account {name} accepts public network access: self-hosted IR {where} reaches "
                "it directly",
                detail=(
                    f"publicNetworkAccess is {props.get('publicNetworkAccess') or 'not set (Enabled)'}; the "
                    "runtime's machines need outbound HTTPS to the account and its ingestion endpoints."
                ),
                evidence=evidence,
                scan=scan,
            )
        ]
    if vnets:
        v.fix.append(
            f"The machines of self-hosted IR {where} must be in the VNet of the ingestion private endpoints: "
            f"{', '.join(vnets)}."
        )
    extra = await _corroboration(target, scans)
    status = v.status
    if status is Status.PASS:
        return [
            META.finding(
                Status.PASS,
                f"Private Purview account {name}: its private endpoints for self-hosted IR {where} are "
                "Approved",
                detail="; ".join(s for _, s in v.items) + ".",
                fix=v.fix,
                evidence=evidence,
                scan=scan,
            )
        ]
    problems = v.problems
    managed_text = (
        f" and its managed resources' public access "
        f"{props.get('managedResourcesPublicNetworkAccess') or 'not set (Enabled)'}"
        if props.get("managedResources")
        else ""
    )
    return [
        META.finding(
            status,
            f"Private Purview account {name}: {problems[0]} (self-hosted IR {where})",
            detail=(
                f"Purview account {name} has public network access "
                f"{'disabled' if public_off else 'enabled'}{managed_text}, so self-hosted IR {where} "
                f"reaches it only through its private endpoints: {'; '.join(problems)}.{extra}"
            ),
            fix=v.fix,
            evidence=evidence,
            scan=scan,
        )
    ]


CHECK = Check(meta=META, run=run)
