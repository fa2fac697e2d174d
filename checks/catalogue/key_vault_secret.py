"""key-vault-secret: each link from scan to secret exists, and the version Purview reads is usable.

Only the versions' properties are read (secrets/list), never a value: whether the value is the right
password or key is left to a person, and every judged finding says so.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from checks.check import Check, CheckMeta
from checks.errors import GatewayError, NotFoundError
from checks.gateways.api import SecretVersion
from checks.model import Finding, Status, worst
from checks.secret_refs import (
    MissingLinkError,
    Problem,
    ScanSecrets,
    VaultSecret,
    collect,
    human_time,
    iso,
    latest,
    settle,
)
from checks.sections import KEY_VAULT_SECRET
from checks.target import Target

META = CheckMeta(
    id="key-vault-secret",
    title="Key Vault secret name and version",
    sections=(KEY_VAULT_SECRET,),
    description=(
        "Follows scan → credential → Key Vault connection → vault → secret; the version Purview reads "
        "exists, is enabled, within its validity dates, and not expiring within 14 days."
    ),
)
EXPIRY_WARNING = timedelta(days=14)
BOT_LIST_PERMISSION = (
    "List on secrets (access policy `list`, or an RBAC role with secrets/readMetadata/action)"
)
PORTAL_CREDENTIAL = "# In the Purview portal: Data Map > Source management > Credentials > {credential}"


def version_evidence(v: SecretVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "enabled": v.enabled,
        "created": iso(v.created),
        "updated": iso(v.updated),
        "expires": iso(v.expires),
        "notBefore": iso(v.not_before),
    }


def pinned(versions: list[SecretVersion], version: str) -> SecretVersion | None:
    return next((v for v in versions if v.version.lower() == version.strip().lower()), None)


def _label(secret: VaultSecret) -> str:
    """'Secret NAME (VERSION) in Key Vault VAULT', the start of a title."""
    version = secret.ref.secret_version or "latest version"
    return f"Secret {secret.ref.secret_name} ({version}) in Key Vault {secret.vault_name}"


def _value_note(secret: VaultSecret, version: str) -> str:
    return (
        "The bot never reads secret values: a person must check that the value is the current password "
        f"or key for the source (`az keyvault secret show --vault-name {secret.vault_name} "
        f"--name {secret.ref.secret_name} --version {version} --query value -o tsv`)."
    )


def problems(secret: VaultSecret, v: SecretVersion, now: datetime) -> list[Problem]:
    """What keeps this version from being read (fail) or will soon (warn)."""
    names = f"--vault-name {secret.vault_name} --name {secret.ref.secret_name}"
    base = f"az keyvault secret set-attributes {names}"
    new_version = f"az keyvault secret set {names} --value '<value>'"
    found: list[Problem] = []
    if v.enabled is False:
        found.append(
            Problem(
                Status.FAIL,
                f"version {v.version} is disabled",
                [f"{base} --version {v.version} --enabled true"],
            )
        )
    if v.expires and v.expires <= now:
        found.append(
            Problem(Status.FAIL, f"version {v.version} expired on {human_time(v.expires)}", [new_version])
        )
    elif v.expires and v.expires - now <= EXPIRY_WARNING:
        found.append(
            Problem(Status.WARN, f"version {v.version} expires on {human_time(v.expires)}", [new_version])
        )
    if v.not_before and v.not_before > now:
        found.append(
            Problem(
                Status.FAIL,
                f"version {v.version} is not valid before {human_time(v.not_before)}",
                [f"{base} --version {v.version} --not-before {iso(now)}"],
            )
        )
    if found and secret.ref.secret_version:
        found[-1].fix.append(
            PORTAL_CREDENTIAL.format(credential=secret.credential)
            + ": after creating a new version, pin it (or leave the version empty for the latest)"
        )
    return found


def judge(secret: VaultSecret, versions: list[SecretVersion], now: datetime) -> Finding:
    """The finding for one secret reference, given its versions' properties."""
    evidence: dict[str, Any] = {**secret.evidence(), "versions": len(versions)}
    ref = secret.ref
    chosen = pinned(versions, ref.secret_version) if ref.secret_version else latest(versions)
    if chosen is None:
        return _missing_version(secret, evidence)
    evidence["chosenVersion"] = version_evidence(chosen)
    found = problems(secret, chosen, now)
    note = _value_note(secret, chosen.version)
    which = "pinned" if ref.secret_version else "latest (secretVersion is empty)"
    if not found:
        expiry = f", expires {human_time(chosen.expires)}" if chosen.expires else ", no expiry"
        return META.finding(
            Status.PASS,
            f"{_label(secret)} exists and is usable",
            detail=(
                f"Credential {secret.credential} reads the {which} version {chosen.version}: "
                f"enabled{expiry}. {note}"
            ),
            evidence=evidence,
            scan=secret.scan,
        )
    status = worst([p.status for p in found])
    sentences = "; ".join(p.sentence for p in found)
    return META.finding(
        status,
        f"{_label(secret)}: {sentences}",
        detail=f"Credential {secret.credential} reads the {which} version, and {sentences}. {note}",
        fix=[line for p in found for line in p.fix],
        evidence={**evidence, "problems": [p.sentence for p in found]},
        scan=secret.scan,
    )


def _missing_version(secret: VaultSecret, evidence: dict[str, Any]) -> Finding:
    ref = secret.ref
    listing = (
        f"az keyvault secret list-versions --vault-name {secret.vault_name} --name {ref.secret_name} -o table"
    )
    what = f"version {ref.secret_version}" if ref.secret_version else "any version"
    portal = PORTAL_CREDENTIAL.format(credential=secret.credential)
    return META.finding(
        Status.FAIL,
        f"Secret {ref.secret_name} in Key Vault {secret.vault_name} has no {what}",
        detail=(
            f"Credential {secret.credential} reads {what} of secret {ref.secret_name}, which does not exist "
            f"in Key Vault {secret.vault_name}."
        ),
        fix=[listing, f"{portal}: set the secret version to one listed, or leave it empty for the latest"],
        evidence=evidence,
        scan=secret.scan,
    )


def _secret_missing(secret: VaultSecret) -> Finding:
    ref, vault = secret.ref, secret.vault_name
    return META.finding(
        Status.FAIL,
        f"Secret {ref.secret_name} not found in Key Vault {vault}",
        detail=(
            f"Credential {secret.credential} ({ref.field}) names secret {ref.secret_name}, which is not in "
            f"Key Vault {vault} ({secret.base_url})."
        ),
        fix=[
            f'az keyvault secret list --vault-name {vault} --query "[].name" -o tsv',
            f"az keyvault secret set --vault-name {vault} --name {ref.secret_name} --value '<value>'",
            PORTAL_CREDENTIAL.format(credential=secret.credential) + ": or correct the secret name",
        ],
        evidence=secret.evidence(),
        scan=secret.scan,
    )


def _unreadable(secret: VaultSecret, error: GatewayError) -> Finding:
    title = f"Could not read the versions of secret {secret.ref.secret_name} in Key Vault {secret.vault_name}"
    finding = META.unknown(title, error, scan=secret.scan, evidence=secret.evidence())
    if error.permission:
        return finding
    needs = f". The bot's identity needs {BOT_LIST_PERMISSION} on Key Vault {secret.vault_name}"
    return replace(finding, detail=finding.detail + needs)


async def check_secret(target: Target, secret: VaultSecret) -> Finding:
    try:
        versions = await target.facts.secret_versions(secret.base_url, secret.ref.secret_name)
    except NotFoundError:
        return _secret_missing(secret)
    except GatewayError as error:
        return _unreadable(secret, error)
    return judge(secret, versions, target.now)


_LINK_FIX = {
    "credential": "create the credential, or edit the scan to use an existing one",
    "key-vault-connection": (
        "Management > Credentials > Manage Key Vault connections > New (with the vault's base URL)"
    ),
    "vault": (
        "check the Key Vault connection's base URL against "
        '`az keyvault list --query "[].properties.vaultUri" -o tsv`'
    ),
}


def _broken_chain(outcome: ScanSecrets, error: MissingLinkError) -> Finding:
    return META.finding(
        Status.FAIL,
        f"Scan {outcome.scan}: {error.link.replace('-', ' ')} {error.name or '(unnamed)'} not found",
        detail=error.message[:1].upper() + error.message[1:] + ".",
        fix=[f"# In the Purview portal: {_LINK_FIX[error.link]}"],
        evidence={"link": error.link, "name": error.name, "error": error.as_evidence()},
        scan=outcome.scan,
    )


async def _scan_findings(target: Target, outcome: ScanSecrets) -> list[Finding]:
    if isinstance(outcome.error, MissingLinkError):
        return [_broken_chain(outcome, outcome.error)]
    settled = settle(META, f"Scan {outcome.scan}: Key Vault secret", outcome)
    if settled is not None:
        return [settled]
    return list(await asyncio.gather(*(check_secret(target, s) for s in outcome.secrets)))


async def run(target: Target) -> list[Finding]:
    outcomes = await collect(target.facts, target.scans)
    per_scan = await asyncio.gather(*(_scan_findings(target, o) for o in outcomes))
    return [f for scan_findings in per_scan for f in scan_findings]


CHECK = Check(meta=META, run=run)
