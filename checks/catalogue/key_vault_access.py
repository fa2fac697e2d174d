"""key-vault-access: Purview's managed identity can Get and List the secrets of every vault a scan uses.

Purview reads Key Vault with its own system-assigned identity, whatever the scan's credential, so that
identity is the one under test here. Access-policy vaults are judged by their policy entries, RBAC vaults by
evaluating role definitions (never role names); the vault firewall is a separate, softer finding.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from checks.check import Check, CheckMeta
from checks.errors import GatewayError
from checks.facts import Facts
from checks.gateways.api import Json
from checks.identity import Identity, purview_identity
from checks.model import Finding, Status
from checks.rbac import Grant, evaluate
from checks.secret_refs import ScanSecrets, collect, settle
from checks.sections import KEY_VAULT_ACCESS
from checks.target import Target

META = CheckMeta(
    id="key-vault-access",
    title="Purview managed identity on the Key Vault",
    sections=(KEY_VAULT_ACCESS,),
    description=(
        "Purview's managed identity has Get and List on secrets of every vault a scan's credential uses "
        "(access policies, or RBAC dataActions evaluated from role definitions); warns on a vault "
        "firewall that keeps trusted services out."
    ),
)
GET_ACTION = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
LIST_ACTION = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
SECRETS_USER_ROLE = "Key Vault Secrets User"  # for the fix command only; decisions use dataActions


@dataclass
class VaultUse:
    """One vault and what the scans use from it."""

    vault: Json
    scans: set[str] = field(default_factory=set)
    secrets: set[str] = field(default_factory=set)

    @property
    def id(self) -> str:
        return str(self.vault.get("id", ""))

    @property
    def name(self) -> str:
        return str(self.vault.get("name", ""))

    @property
    def props(self) -> dict[str, Any]:
        return self.vault.get("properties") or {}

    @property
    def scan(self) -> str | None:
        """The scan a finding is about, when exactly one scan uses the vault."""
        return next(iter(self.scans)) if len(self.scans) == 1 else None

    def evidence(self) -> dict[str, Any]:
        return {
            "vault": self.name,
            "vaultId": self.id,
            "scans": sorted(self.scans),
            "secrets": sorted(self.secrets),
        }


def vault_uses(outcomes: list[ScanSecrets]) -> list[VaultUse]:
    """One entry per vault (case-insensitive id), however many scans and secrets share it."""
    uses: dict[str, VaultUse] = {}
    for outcome in outcomes:
        for secret in outcome.secrets:
            use = uses.setdefault(secret.vault_id.lower(), VaultUse(secret.vault))
            use.scans.add(secret.scan)
            use.secrets.add(secret.ref.secret_name)
    return list(uses.values())


def missing_sentence(has_get: bool, has_list: bool) -> str | None:
    """'has Get but not List on secrets', or None when both are there."""
    if has_get and has_list:
        return None
    if has_get or has_list:
        held, lacking = ("Get", "List") if has_get else ("List", "Get")
        return f"has {held} but not {lacking} on secrets"
    return "has neither Get nor List on secrets"


def _who(identity: Identity, *, oid: bool = False) -> str:
    """The identity as a title names it, or (`oid`) as a detail does."""
    who = f"Purview's managed identity {identity.display_name}"
    return f"{who} (object id {identity.object_id})" if oid else who


# --- access policies ----------------------------------------------------------------------------------
def policy_entries(vault: Json, object_id: str) -> list[Json]:
    """Access-policy entries for the identity itself (compound entries with an applicationId do not apply)."""
    entries = (vault.get("properties") or {}).get("accessPolicies") or []
    return [
        e
        for e in entries
        if isinstance(e, dict)
        and str(e.get("objectId", "")).lower() == object_id.lower()
        and not e.get("applicationId")
    ]


def secret_permissions(entries: list[Json]) -> set[str]:
    return {str(p).lower() for e in entries for p in ((e.get("permissions") or {}).get("secrets") or [])}


def judge_policies(use: VaultUse, identity: Identity) -> Finding:
    entries = policy_entries(use.vault, identity.object_id)
    perms = secret_permissions(entries)
    has_get, has_list = bool(perms & {"get", "all"}), bool(perms & {"list", "all"})
    evidence = {
        **use.evidence(),
        "model": "accessPolicy",
        "identity": identity.evidence(),
        "secretPermissions": sorted(perms),
        "policyEntries": len(entries),
    }
    problem = missing_sentence(has_get, has_list)
    if problem is None:
        return META.finding(
            Status.PASS,
            f"{_who(identity)} can Get and List secrets in Key Vault {use.name}",
            detail=(
                f"{_who(identity, oid=True)} has secret permissions {', '.join(sorted(perms))} in the "
                f"access policies of Key Vault {use.name}."
            ),
            evidence=evidence,
            scan=use.scan,
        )
    if not entries:
        problem = "has no access policy"
    wanted = " ".join(sorted((perms - {"all"}) | {"get", "list"}))
    target = f"--name {use.name} --object-id {identity.object_id}"
    fix = f"az keyvault set-policy {target} --secret-permissions {wanted}"
    return META.finding(
        Status.FAIL,
        f"{_who(identity)} {problem} in Key Vault {use.name}",
        detail=(
            f"{_who(identity, oid=True)} {problem} in Key Vault {use.name} (access-policy vault); Purview "
            "needs Get and List on secrets to read the scan's credential."
        ),
        fix=[fix],
        evidence=evidence,
        scan=use.scan,
    )


# --- RBAC ---------------------------------------------------------------------------------------------
async def judge_rbac(facts: Facts, use: VaultUse, identity: Identity) -> Finding:
    try:
        get, list_ = await asyncio.gather(
            evaluate(facts, use.id, identity.object_id, GET_ACTION, data=True),
            evaluate(facts, use.id, identity.object_id, LIST_ACTION, data=True),
        )
    except GatewayError as error:
        title = f"Could not evaluate RBAC on Key Vault {use.name} for Purview's managed identity"
        return META.unknown(title, error, scan=use.scan, evidence=use.evidence())
    evidence = {
        **use.evidence(),
        "model": "rbac",
        "identity": identity.evidence(),
        "getSecret": get.evidence(),
        "readMetadata": list_.evidence(),
    }
    return _rbac_finding(use, identity, get, list_, evidence)


def _rbac_finding(
    use: VaultUse, identity: Identity, get: Grant, list_: Grant, evidence: dict[str, Any]
) -> Finding:
    fix = (
        f"az role assignment create --assignee-object-id {identity.object_id} --assignee-principal-type "
        f'ServicePrincipal --role "{SECRETS_USER_ROLE}" --scope {use.id}'
    )
    problem = missing_sentence(get.granted, list_.granted)
    if problem is not None:
        lacking = " or ".join(a for a, g in ((GET_ACTION, get), (LIST_ACTION, list_)) if not g.granted)
        return META.finding(
            Status.FAIL,
            f"{_who(identity)} {problem} in Key Vault {use.name}",
            detail=(
                f"{_who(identity, oid=True)} {problem} in Key Vault {use.name} (RBAC vault): no role "
                f"assigned to it or its groups at the vault or above grants {lacking}."
            ),
            fix=[fix],
            evidence=evidence,
            scan=use.scan,
        )
    if get.conditional or list_.conditional:
        return META.finding(
            Status.WARN,
            f"{_who(identity)} reads secrets in Key Vault {use.name} only under a condition",
            detail=(
                f"Every role assignment granting {_who(identity, oid=True)} secret access on Key Vault "
                f"{use.name} carries an ABAC condition, which may exclude the scan's secrets; check the "
                "condition or assign the role without one."
            ),
            fix=[fix],
            evidence=evidence,
            scan=use.scan,
        )
    return META.finding(
        Status.PASS,
        f"{_who(identity)} can Get and List secrets in Key Vault {use.name}",
        detail=f"RBAC grants {_who(identity, oid=True)} getSecret and readMetadata on Key Vault {use.name}.",
        evidence=evidence,
        scan=use.scan,
    )


# --- firewall -----------------------------------------------------------------------------------------
def firewall_problem(props: dict[str, Any]) -> str | None:
    """Why the vault's network rules may keep Purview out, or None."""
    acls = props.get("networkAcls") or {}
    bypass = {b.strip().lower() for b in str(acls.get("bypass") or "").split(",")}
    trusted = "azureservices" in bypass
    if str(props.get("publicNetworkAccess") or "").lower() == "disabled":
        way = " or as a trusted Microsoft service" if trusted else ""
        return f"public network access is disabled: Purview reaches it only through a private endpoint{way}"
    if str(acls.get("defaultAction") or "").lower() == "deny" and not trusted:
        return (
            "the firewall denies by default and does not let trusted Microsoft services (Purview) bypass it"
        )
    return None


def judge_firewall(use: VaultUse) -> Finding | None:
    problem = firewall_problem(use.props)
    if problem is None:
        return None
    network = {
        "publicNetworkAccess": use.props.get("publicNetworkAccess"),
        "networkAcls": use.props.get("networkAcls"),
    }
    return META.finding(
        Status.WARN,
        f"Key Vault {use.name}: {problem.split(':')[0]}",
        detail=(
            f"Key Vault {use.name}: {problem}. A scan on the Azure integration runtime cannot read its "
            "credential unless trusted services may bypass the firewall or a managed private endpoint "
            "to the vault is approved."
        ),
        fix=[
            f"az keyvault update --name {use.name} --bypass AzureServices",
            f"az network private-endpoint-connection list --id {use.id} -o table",
        ],
        evidence={**use.evidence(), "network": network},
        scan=use.scan,
    )


# --- the check ----------------------------------------------------------------------------------------
async def _vault_findings(facts: Facts, use: VaultUse, identity: Identity) -> list[Finding]:
    if use.props.get("enableRbacAuthorization"):
        access = await judge_rbac(facts, use, identity)
    else:
        access = judge_policies(use, identity)
    firewall = judge_firewall(use)
    return [access] if firewall is None else [access, firewall]


async def _identity(facts: Facts) -> Identity | GatewayError:
    try:
        return await purview_identity(facts)
    except GatewayError as error:
        return error


async def run(target: Target) -> list[Finding]:
    identity, outcomes = await asyncio.gather(_identity(target.facts), collect(target.facts, target.scans))
    out = [f for o in outcomes if (f := settle(META, f"Scan {o.scan}: Key Vault access", o)) is not None]
    uses = vault_uses(outcomes)
    if not uses:
        return out
    if isinstance(identity, GatewayError):
        vaults = {"vaults": [u.name for u in uses]}
        title = "Could not read Purview's managed identity"
        return [*out, META.unknown(title, identity, evidence=vaults)]
    per_vault = await asyncio.gather(*(_vault_findings(target.facts, u, identity) for u in uses))
    return out + [f for fs in per_vault for f in fs]


CHECK = Check(meta=META, run=run)
