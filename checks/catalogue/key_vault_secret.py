"""key-vault-secret: each link from scan to secret exists, and the version Purview reads is usable.

Only the versions' properties are read (secrets/list), never a value: whether the value is the right
password or key is left to a person, and every judged finding says so.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from checks import findings
from checks.check import Check, CheckMeta
from checks.errors import GatewayError, NotFoundError
from checks.gateways.api import SecretVersion
from checks.model import Finding, Status
from checks.secret_refs import MissingLinkError, ScanSecrets, VaultSecret, collect, settle
from checks.sections import KEY_VAULT_SECRET
from checks.target import Target

ID = "key-vault-secret"
EXPIRY_WARNING = timedelta(days=14)
BOT_LIST_PERMISSION = "List on secrets (access policy `list`, or an RBAC role with secrets/readMetadata/action)"
PORTAL_CREDENTIAL = "In the Purview portal: Data Map > Source management > Credentials > {credential}"


@dataclass
class Problem:
    status: Status
    sentence: str
    fix: list[str] = field(default_factory=list)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def version_evidence(v: SecretVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "enabled": v.enabled,
        "created": _iso(v.created),
        "updated": _iso(v.updated),
        "expires": _iso(v.expires),
        "notBefore": _iso(v.not_before),
    }


def latest(versions: list[SecretVersion]) -> SecretVersion | None:
    """The version Key Vault serves when none is named: the most recently created one."""
    return max(versions, key=lambda v: (v.created or v.updated or datetime.min.replace(tzinfo=None).astimezone()),
               default=None)


def pinned(versions: list[SecretVersion], version: str) -> SecretVersion | None:
    return next((v for v in versions if v.version.lower() == version.strip().lower()), None)


def _label(secret: VaultSecret) -> str:
    version = secret.ref.secret_version or "latest version"
    return f"secret {secret.ref.secret_name} ({version}) in Key Vault {secret.vault_name}"


def _value_note(secret: VaultSecret, version: str) -> str:
    return (
        "The bot never reads secret values: a person must check that the value is the current password "
        f"or key for the source (`az keyvault secret show --vault-name {secret.vault_name} "
        f"--name {secret.ref.secret_name} --version {version} --query value -o tsv`)."
    )


def problems(secret: VaultSecret, v: SecretVersion, now: datetime) -> list[Problem]:
    """What keeps this version from being read (fail) or will soon (warn)."""
    base = f"az keyvault secret set-attributes --vault-name {secret.vault_name} --name {secret.ref.secret_name}"
    new_version = f"az keyvault secret set --vault-name {secret.vault_name} --name {secret.ref.secret_name} --value '<value>'"
    found: list[Problem] = []
    if v.enabled is False:
        found.append(Problem(Status.FAIL, f"version {v.version} is disabled", [f"{base} --version {v.version} --enabled true"]))
    if v.expires and v.expires <= now:
        found.append(Problem(Status.FAIL, f"version {v.version} expired on {_when(v.expires)}", [new_version]))
    elif v.expires and v.expires - now <= EXPIRY_WARNING:
        found.append(Problem(Status.WARN, f"version {v.version} expires on {_when(v.expires)}", [new_version]))
    if v.not_before and v.not_before > now:
        found.append(
            Problem(
                Status.FAIL,
                f"version {v.version} is not valid before {_when(v.not_before)}",
                [f"{base} --version {v.version} --not-before {_iso(now)}"],
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
        expiry = f", expires {_when(chosen.expires)}" if chosen.expires else ", no expiry"
        return Finding(
            ID, Status.PASS, KEY_VAULT_SECRET,
            f"{_label(secret).capitalize()} exists and is usable",
            f"Credential {secret.credential} reads the {which} version {chosen.version}: enabled{expiry}. {note}",
            evidence=evidence, scan=secret.scan,
        )  # fmt: skip
    status = Status.FAIL if any(p.status is Status.FAIL for p in found) else Status.WARN
    sentences = "; ".join(p.sentence for p in found)
    return Finding(
        ID, status, KEY_VAULT_SECRET,
        f"{_label(secret).capitalize()}: {sentences}",
        f"Credential {secret.credential} reads the {which} version, and {sentences}. {note}",
        fix=[line for p in found for line in p.fix],
        evidence={**evidence, "problems": [p.sentence for p in found]}, scan=secret.scan,
    )  # fmt: skip


def _missing_version(secret: VaultSecret, evidence: dict[str, Any]) -> Finding:
    ref = secret.ref
    listing = f"az keyvault secret list-versions --vault-name {secret.vault_name} --name {ref.secret_name} -o table"
    what = f"version {ref.secret_version}" if ref.secret_version else "any version"
    return Finding(
        ID, Status.FAIL, KEY_VAULT_SECRET,
        f"Secret {ref.secret_name} in Key Vault {secret.vault_name} has no {what}",
        f"Credential {secret.credential} pins version {ref.secret_version or '(latest)'} of secret "
        f"{ref.secret_name}, which does not exist in Key Vault {secret.vault_name}.",
        fix=[listing, PORTAL_CREDENTIAL.format(credential=secret.credential)
             + ": set the secret version to one listed, or leave it empty for the latest"],
        evidence=evidence, scan=secret.scan,
    )  # fmt: skip


def _secret_missing(secret: VaultSecret) -> Finding:
    ref, vault = secret.ref, secret.vault_name
    return Finding(
        ID, Status.FAIL, KEY_VAULT_SECRET,
        f"Secret {ref.secret_name} not found in Key Vault {vault}",
        f"Credential {secret.credential} ({ref.field}) names secret {ref.secret_name}, which is not in "
        f"Key Vault {vault} ({secret.base_url}).",
        fix=[
            f"az keyvault secret list --vault-name {vault} --query \"[].name\" -o tsv",
            f"az keyvault secret set --vault-name {vault} --name {ref.secret_name} --value '<value>'",
            PORTAL_CREDENTIAL.format(credential=secret.credential) + ": or correct the secret name",
        ],
        evidence=secret.evidence(), scan=secret.scan,
    )  # fmt: skip


def _unreadable(secret: VaultSecret, error: GatewayError) -> Finding:
    finding = findings.unknown(
        ID, KEY_VAULT_SECRET, f"Could not read the versions of {_label(secret)}", error,
        scan=secret.scan, evidence=secret.evidence(),
    )  # fmt: skip
    if not error.permission:
        finding.detail += f". The bot's identity needs {BOT_LIST_PERMISSION} on Key Vault {secret.vault_name}"
    return finding


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
    "key-vault-connection": "Management > Credentials > Manage Key Vault connections > New (base URL of the vault)",
    "vault": "check the Key Vault connection's base URL against `az keyvault list --query \"[].properties.vaultUri\"`",
}


def _broken_chain(outcome: ScanSecrets, error: MissingLinkError) -> Finding:
    return Finding(
        ID, Status.FAIL, KEY_VAULT_SECRET,
        f"Scan {outcome.scan}: {error.link.replace('-', ' ')} {error.name} not found",
        error.message[:1].upper() + error.message[1:] + ".",
        fix=[f"In the Purview portal: {_LINK_FIX[error.link]}"],
        evidence={"link": error.link, "name": error.name, "error": error.as_evidence()}, scan=outcome.scan,
    )  # fmt: skip


async def _scan_findings(target: Target, outcome: ScanSecrets) -> list[Finding]:
    if isinstance(outcome.error, MissingLinkError):
        return [_broken_chain(outcome, outcome.error)]
    settled = settle(ID, KEY_VAULT_SECRET, f"Scan {outcome.scan}: Key Vault secret", outcome)
    if settled is not None:
        return [settled]
    return list(await asyncio.gather(*(check_secret(target, s) for s in outcome.secrets)))


async def run(target: Target) -> list[Finding]:
    outcomes = await collect(target.facts, target.scans)
    per_scan = await asyncio.gather(*(_scan_findings(target, o) for o in outcomes))
    return [f for scan_findings in per_scan for f in scan_findings]


CHECK = Check(
    meta=CheckMeta(
        id=ID,
        title="Key Vault secret name and version",
        sections=(KEY_VAULT_SECRET,),
        description=(
            "Follows scan → credential → Key Vault connection → vault → secret; the version Purview reads "
            "exists, is enabled, within its validity dates, and not expiring within 14 days."
        ),
    ),
    run=run,
)
