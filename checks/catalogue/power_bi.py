"""power-bi: what a Power BI tenant scan needs that the bot can and cannot see.

Purview scans Power BI through its read-only admin (scanner) APIs. For a same-tenant scan with Purview's
managed identity the Power BI admin must (https://learn.microsoft.com/en-us/purview/register-scan-power-bi-tenant,
https://learn.microsoft.com/en-us/fabric/admin/service-admin-portal-admin-api-settings):
- put Purview's identity in a Microsoft Entra security group;
- allow that group in "Service principals can access read-only admin APIs";
- enable "Enhance admin APIs responses with detailed metadata" (and, for expressions, "… with DAX and
  mashup expressions"), which apply to service principals only with the first setting on.
Power BI's tenant settings are read through the Fabric admin API with a Fabric administrator's rights, which
this bot does not ask for: so the settings are a `warn` checklist with the admin-portal steps, never a `fail`.
What the bot does see: the group membership of Purview's identity (Graph), the source's tenant against the
account's (cross-tenant scans support only delegated authentication or a service principal:
https://learn.microsoft.com/en-us/purview/register-scan-power-bi-tenant-cross-tenant) and the account's
public network access (a private Purview account needs a self-hosted or managed VNet runtime for the scan).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from checks import fixes, sections
from checks.catalogue import scan_history
from checks.check import Check, CheckMeta
from checks.classify import POWER_BI_ADMIN_API_REFUSED, classify_text, error_text
from checks.errors import GatewayError
from checks.gateways.api import Json
from checks.identity import purview_identity
from checks.model import Finding, Status
from checks.runtimes import scan_runtime_name
from checks.target import Target

META = CheckMeta(
    id="power-bi",
    title="Power BI tenant settings for Purview",
    sections=(sections.POWER_BI,),
    description=(
        "For Power BI sources: Purview's identity is in a security group, the admin-API tenant settings "
        "checklist, cross-tenant authentication (delegated or service principal only) and private-network "
        "limits; tenant settings the bot cannot read are a warn, never a fail."
    ),
)

POWER_BI_KIND = "powerbi"
ADMIN_PORTAL = "https://app.powerbi.com/admin-portal/tenantSettings"
SETTINGS = (
    "Service principals can access read-only admin APIs",
    "Enhance admin APIs responses with detailed metadata",
    "Enhance admin APIs responses with DAX and mashup expressions",
)
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


def auth_of(scan: Json) -> str:
    """`msi`, `delegated` or the scan kind's own suffix, lower case (`PowerBIMsi` → `msi`)."""
    kind = str(scan.get("kind", ""))
    return kind[len("PowerBI") :].lower() if kind.lower().startswith(POWER_BI_KIND) else kind.lower()


def checklist(group_names: list[str]) -> list[str]:
    """The admin-portal steps, one per setting, naming the group Purview's identity is in when known."""
    group = group_names[0] if len(group_names) == 1 else "the security group that holds Purview's identity"
    return [
        f"In the Power BI admin portal ({ADMIN_PORTAL}), Admin API settings > {SETTINGS[0]}: Enabled, "
        f"applied to specific security groups: {group}.",
        f"In the same Admin API settings, {SETTINGS[1]}: Enabled for {group}.",
        f"Optionally, {SETTINGS[2]}: Enabled for {group} (expressions in the scan's metadata).",
        "Tenant setting changes take up to 15 minutes to apply: then run the scan again.",
    ]


def _tenant(value: Any) -> str | None:
    text = str(value or "").strip()
    return text.lower() if _GUID.match(text) else None


def refusal(runs: list[Json]) -> str | None:
    """The words of the newest finished run's error when Power BI's admin APIs refused it; else None."""
    last = scan_history.history(runs).last
    if last is None or not scan_history.is_failed(last):
        return None
    found = classify_text(error_text(last))
    return found.matched if found is not None and found.cause == POWER_BI_ADMIN_API_REFUSED else None


def judge_scan(
    target: Target,
    scan: Json,
    account: Json | GatewayError,
    groups: tuple[str, list[str]] | GatewayError,
    refused: str | None = None,
) -> Finding:
    name = str(scan.get("name", ""))
    auth = auth_of(scan)
    title = f"Scan {name}: Power BI tenant"
    evidence: dict[str, Any] = {
        "scanKind": scan.get("kind"),
        "powerBiTenant": target.source_props.get("tenant"),
    }
    account_tenant = None
    public = None
    if isinstance(account, dict):
        account_tenant = _tenant((account.get("identity") or {}).get("tenantId"))
        public = (account.get("properties") or {}).get("publicNetworkAccess")
        evidence["purviewTenant"] = account_tenant
        evidence["purviewPublicNetworkAccess"] = public
    source_tenant = _tenant(target.source_props.get("tenant"))
    cross = source_tenant is not None and account_tenant is not None and source_tenant != account_tenant
    evidence["crossTenant"] = cross
    if cross and auth == "msi":
        return META.finding(
            Status.FAIL,
            f"{title}: cross-tenant scan with Purview's managed identity",
            detail=(
                f"Power BI tenant {source_tenant} is not Purview's tenant {account_tenant}: a cross-tenant "
                "Power BI scan supports only delegated authentication or a service principal, not Purview's "
                "managed identity."
            ),
            fix=[
                "Create a credential for an app registered in the Power BI tenant (delegated authentication: "
                "its client id, a user's name and password in Key Vault) and edit the scan to use it: "
                "https://learn.microsoft.com/en-us/purview/register-scan-power-bi-tenant-cross-tenant",
            ],
            evidence=evidence,
            scan=name,
        )
    notes: list[str] = []
    runtime = scan_runtime_name(scan)
    if str(public or "").lower() == "disabled" and runtime is None:
        notes.append(
            "Purview's public network access is Disabled and the scan runs on the Azure runtime: a private "
            "Purview account scans Power BI only through a managed VNet runtime (v2) or a self-hosted one"
        )
    notes.append(
        "if the Power BI tenant blocks public internet access (private links), only a self-hosted runtime "
        "can scan it"
    )
    fix: list[str]
    if auth == "msi" and not cross:
        if isinstance(groups, GatewayError):
            evidence["groupsError"] = groups.as_evidence()
            who = f"the bot could not list the groups of Purview's identity ({groups.reason})"
            fix = checklist([])
        else:
            principal, names = groups
            evidence["purviewIdentity"] = principal
            evidence["purviewGroups"] = names
            if not names:
                who = (
                    "Purview's identity is in no security group, so no tenant setting can allow it: add it "
                    "to one first"
                )
                fix = [
                    fixes.command(
                        "az ad group member add",
                        [("--group", "<security group for Power BI>"), ("--member-id", principal)],
                    ),
                    *checklist([]),
                ]
            else:
                who = f"Purview's identity is in {', '.join(names)}: one of them must be the allowed group"
                fix = checklist(names)
        detail = (
            f"The bot cannot read Power BI's tenant settings (that takes a Fabric administrator), so check "
            f"them: {SETTINGS[0]} for a security group holding Purview's identity, and {SETTINGS[1]}. {who}."
        )
    else:
        detail = (
            "The scan signs in as an app (delegated authentication or a service principal): the app must be "
            f"in the group allowed by {SETTINGS[0]} (service principal) or the user a Fabric administrator "
            f"(delegated), with {SETTINGS[1]} on."
        )
        fix = checklist([])
    detail += " Limits: " + "; ".join(notes) + "."
    if refused:
        evidence["newestRunRefusal"] = refused
        detail = (
            f"The newest run failed with \u201c{refused}\u201d: Power BI refused the scan's identity, so a "
            f"setting below (or the group membership) is missing. {detail}"
        )
    return META.finding(
        Status.WARN,
        f"{title}: check the admin API tenant settings (the bot cannot read them)",
        detail=detail,
        fix=fix,
        evidence=evidence,
        scan=name,
    )


async def _account(target: Target) -> Json | GatewayError:
    try:
        return await target.facts.account()
    except GatewayError as error:
        return error


async def _groups(target: Target) -> tuple[str, list[str]] | GatewayError:
    """Purview's identity and the ids of the groups it is in (names are not read: one call per group)."""
    try:
        identity = await purview_identity(target.facts)
        ids = await target.facts.transitive_group_ids(identity.object_id)
    except GatewayError as error:
        return error
    return identity.object_id, sorted(ids)


async def run(target: Target) -> list[Finding]:
    if target.source_kind.lower() != POWER_BI_KIND:
        return [META.skipped(f"{target.source_name} is not a Power BI source", f"Kind {target.source_kind}.")]
    if not target.scans:
        return [META.skipped(f"{target.source_name} has no scans", "No Power BI scan to check.")]
    needs_groups = any(auth_of(s) == "msi" for s in target.scans)
    account, groups, runs = await asyncio.gather(
        _account(target),
        _groups(target) if needs_groups else _nothing(),
        asyncio.gather(*(_runs(target, str(s.get("name", ""))) for s in target.scans)),
    )
    return [
        judge_scan(target, s, account, groups, refusal(r)) for s, r in zip(target.scans, runs, strict=True)
    ]


async def _runs(target: Target, scan: str) -> list[Json]:
    try:
        return await target.facts.runs(target.source_name, scan)
    except GatewayError:  # the runs only add corroboration
        return []


async def _nothing() -> GatewayError:
    return GatewayError("list the groups of Purview's identity", message="not needed: no MSI scan")


CHECK = Check(meta=META, run=run)
