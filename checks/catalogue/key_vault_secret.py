"""key-vault-secret: each link from scan to secret exists, and the version Purview reads is usable.

Only the versions' properties are read (secrets/list), never a value: whether the value is the right
password or key is left to a person, and every judged finding says so.

What stops Purview's read, as Key Vault behaves (not as its attribute names suggest):
- a disabled version (403 "Operation get is not allowed on a disabled secret"), a version id that does not
  exist, or a secret that does not exist or is soft-deleted (404 SecretNotFound): `fail`;
- `exp` and `nbf` do *not*: "A secret's get operation will work for not-yet-valid and expired secrets,
  outside the nbf / exp window" and both fields are "for informational purposes only"
  (https://learn.microsoft.com/en-us/azure/key-vault/secrets/about-secrets#date-time-controlled-operations).
  An expired or not-yet-valid version is a `warn` (the value may be stale at the source), and `fail` only
  when the scan's newest run failed with the source refusing the key or password.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from checks import fixes
from checks.check import Check, CheckMeta
from checks.errors import GatewayError, NotFoundError
from checks.gateways.api import SecretVersion
from checks.model import Finding, Status
from checks.run_evidence import BLOCKS_EVERY_RUN, CAUSE_SINCE
from checks.secret_refs import (
    MissingLinkError,
    Refusal,
    ScanSecrets,
    VaultSecret,
    collect,
    human_time,
    iso,
    latest,
    newest_refusal,
    settle,
)
from checks.sections import KEY_VAULT_SECRET
from checks.target import Target
from checks.times import parse_time

META = CheckMeta(
    id="key-vault-secret",
    title="Key Vault secret name and version",
    sections=(KEY_VAULT_SECRET,),
    description=(
        "Follows scan → credential → Key Vault connection → vault → secret; the version Purview reads "
        "exists (not soft-deleted) and is enabled; expired, not-yet-valid or soon-expiring versions are a "
        "hazard (Key Vault still serves them), a failure only when the source refused the value."
    ),
)
EXPIRY_WARNING = timedelta(days=14)
BOT_LIST_PERMISSION = (
    "List on secrets (access policy `list`, or an RBAC role with secrets/readMetadata/action)"
)
PORTAL_CREDENTIAL = (
    "In the Purview portal (https://web.purview.azure.com): Data Map > Source management > Credentials > "
    "{credential}"
)
DATES_DOC = (
    "https://learn.microsoft.com/en-us/azure/key-vault/secrets/about-secrets#date-time-controlled-operations"
)
# Soft-deleted secrets are recovered (secrets/recover), not re-created: `set` on a soft-deleted name is
# refused with 409 Conflict until it is recovered or purged.
# https://learn.microsoft.com/en-us/azure/key-vault/general/key-vault-recovery
RECOVERY_DOC = "https://learn.microsoft.com/en-us/azure/key-vault/general/key-vault-recovery"

EXPIRED, NOT_YET_VALID, EXPIRING = "expired", "not-yet-valid", "expiring"


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


def _names(secret: VaultSecret) -> str:
    return f"--vault-name {secret.vault_name} --name {secret.ref.secret_name}"


def _set_secret(secret: VaultSecret) -> str:
    """Create the secret without its value on the screen, in the shell's history or in the command:
    `read -rs` asks for it."""
    return "read -rsp 'New value: ' VALUE\n" + fixes.command(
        "az keyvault secret set",
        [
            ("--vault-name", secret.vault_name),
            ("--name", secret.ref.secret_name),
            ("--value", "$VALUE"),
            ("--query", "attributes"),
        ],
    )


def _value_note(secret: VaultSecret, version: str) -> str:
    return (
        "The bot never reads secret values: a person must check that the value is the current password "
        f"or key for the source, with Test connection on the scan in the Purview portal, which tries version "
        f"{version} against the source without showing it."
    )


def _new_version(secret: VaultSecret) -> str:
    """A new version holding the current password or key, asked for with `read -rs` (never printed)."""
    return _set_secret(secret)


@dataclass
class DateProblem:
    """What a version's `exp` / `nbf` say: informational to Key Vault, a hint about the value's age."""

    kind: str  # EXPIRED | NOT_YET_VALID | EXPIRING
    sentence: str
    fix: list[str] = field(default_factory=list)
    since: datetime | None = None  # when the state began, when the dates tell


def date_problems(secret: VaultSecret, v: SecretVersion, now: datetime) -> list[DateProblem]:
    base = f"az keyvault secret set-attributes {_names(secret)} --version {v.version}"
    new_version = _new_version(secret)
    found: list[DateProblem] = []
    if v.expires and v.expires <= now:
        found.append(
            DateProblem(
                EXPIRED,
                f"version {v.version} expired on {human_time(v.expires)}",
                [
                    new_version,
                    "Or, only if the value is still the source's, extend the expiry:",
                    fixes.wrap(f"{base} --expires <new date>"),
                ],
                since=v.expires,
            )
        )
    elif v.expires and v.expires - now <= EXPIRY_WARNING:
        found.append(
            DateProblem(EXPIRING, f"version {v.version} expires on {human_time(v.expires)}", [new_version])
        )
    if v.not_before and v.not_before > now:
        found.append(
            DateProblem(
                NOT_YET_VALID,
                f"version {v.version} is not valid before {human_time(v.not_before)}",
                [f"{base} --not-before {iso(now)}"],
            )
        )
    return found


async def _refusal(target: Target, scan: str) -> Refusal | GatewayError | None:
    """Whether the scan's newest finished run failed with the source refusing the key or password."""
    try:
        return newest_refusal(await target.facts.runs(target.source_name, scan))
    except GatewayError as error:
        return error


def _corroboration(refusal: Refusal | GatewayError | None) -> str:
    if isinstance(refusal, Refusal):
        return (
            f"The scan's newest run ({refusal.run_id}) failed with “{refusal.matched}” ({refusal.reason}): "
            "the source refuses the value this version holds."
        )
    if isinstance(refusal, GatewayError):
        return f"Whether the source refuses the value is unknown: {refusal.reason}."
    return (
        "The scan's newest run did not fail with the source refusing the key or password, so this is not "
        "known to stop the scan."
    )


def judge(
    secret: VaultSecret,
    versions: list[SecretVersion],
    now: datetime,
    refusal: Refusal | GatewayError | None = None,
) -> Finding:
    """The finding for one secret reference, given its versions' properties and (for date problems) what
    the scan's newest run said."""
    evidence: dict[str, Any] = {**secret.evidence(), "versions": len(versions)}
    ref = secret.ref
    chosen = pinned(versions, ref.secret_version) if ref.secret_version else latest(versions)
    if chosen is None:
        return _missing_version(secret, evidence)
    evidence["chosenVersion"] = version_evidence(chosen)
    note = _value_note(secret, chosen.version)
    which = "pinned" if ref.secret_version else "latest (secretVersion is empty)"
    dates = date_problems(secret, chosen, now)
    pin_fix = (
        [
            PORTAL_CREDENTIAL.format(credential=secret.credential)
            + ": after creating a new version, pin it (or leave the version empty for the latest)."
        ]
        if ref.secret_version
        else []
    )
    if chosen.enabled is False:
        return _disabled(secret, chosen, which, dates, evidence, note, pin_fix)
    if dates:
        return _dated(secret, which, dates, refusal, evidence, note, pin_fix)
    expiry = f", expires {human_time(chosen.expires)}" if chosen.expires else ", no expiry"
    return META.finding(
        Status.PASS,
        f"{_label(secret)} exists and is enabled",
        detail=(
            f"Credential {secret.credential} reads the {which} version {chosen.version}: "
            f"enabled{expiry}. {note}"
        ),
        evidence=evidence,
        scan=secret.scan,
    )


def _disabled(
    secret: VaultSecret,
    chosen: SecretVersion,
    which: str,
    dates: list[DateProblem],
    evidence: dict[str, Any],
    note: str,
    pin_fix: list[str],
) -> Finding:
    # Key Vault refuses a get on a disabled version (403, "Operation get is not allowed on a disabled
    # secret"): https://learn.microsoft.com/en-us/azure/key-vault/secrets/about-secrets#secret-attributes
    sentences = [f"version {chosen.version} is disabled", *(d.sentence for d in dates)]
    text = "; ".join(sentences)
    fix = [f"az keyvault secret set-attributes {_names(secret)} --version {chosen.version} --enabled true"]
    return META.finding(
        Status.FAIL,
        f"{_label(secret)}: {text}",
        detail=(
            f"Credential {secret.credential} reads the {which} version, and {text}: Key Vault refuses to "
            f"return a disabled version, so Purview cannot read the credential. {note}"
        ),
        fix=fix + pin_fix,
        evidence={
            **evidence,
            "problems": sentences,
            # the version was disabled at or before its last attribute change
            CAUSE_SINCE: iso(chosen.updated),
            BLOCKS_EVERY_RUN: True,
        },
        scan=secret.scan,
    )


def _dated(
    secret: VaultSecret,
    which: str,
    dates: list[DateProblem],
    refusal: Refusal | GatewayError | None,
    evidence: dict[str, Any],
    note: str,
    pin_fix: list[str],
) -> Finding:
    sentences = [d.sentence for d in dates]
    text = "; ".join(sentences)
    outside = [d for d in dates if d.kind in (EXPIRED, NOT_YET_VALID)]
    refused = isinstance(refusal, Refusal) and bool(outside)
    status = Status.FAIL if refused else Status.WARN
    headline = f"{_label(secret)}: {text}" + (" and the source refuses its value" if refused else "")
    served = (
        "Key Vault still serves versions outside their nbf/exp window (the dates are informational: "
        f"{DATES_DOC}), so Purview can read this one; but a date often marks when the value stops working "
        "at the source (a rotated password, an expired client secret, a regenerated key)."
        if outside
        else "Key Vault will still serve it after that date, but the value may stop working at the source "
        "then (a rotated password, an expired client secret)."
    )
    extra: dict[str, Any] = {"problems": sentences}
    if isinstance(refusal, Refusal):
        extra["refusedByRun"] = refusal.evidence()
    elif isinstance(refusal, GatewayError):
        extra["runsError"] = refusal.as_evidence()
    since = next((d.since for d in outside if d.since), None)
    if refused and since:
        extra[CAUSE_SINCE] = iso(since)
    corroboration = _corroboration(refusal) if outside else ""
    return META.finding(
        status,
        headline,
        detail=(
            f"Credential {secret.credential} reads the {which} version, and {text}. {served} "
            f"{corroboration} {note}".replace("  ", " ")
        ),
        # refused: only a new version with the source's current value helps
        fix=([_new_version(secret)] if refused else [line for d in dates for line in d.fix]) + pin_fix,
        evidence={**evidence, **extra},
        scan=secret.scan,
    )


def _missing_version(secret: VaultSecret, evidence: dict[str, Any]) -> Finding:
    ref = secret.ref
    listing = f"az keyvault secret list-versions {_names(secret)} -o table"
    what = f"version {ref.secret_version}" if ref.secret_version else "any version"
    portal = PORTAL_CREDENTIAL.format(credential=secret.credential)
    return META.finding(
        Status.FAIL,
        f"Secret {ref.secret_name} in Key Vault {secret.vault_name} has no {what}",
        detail=(
            f"Credential {secret.credential} reads {what} of secret {ref.secret_name}, which does not exist "
            f"in Key Vault {secret.vault_name}: Key Vault answers 404 SecretNotFound."
        ),
        fix=[listing, f"{portal}: set the secret version to one listed, or leave it empty for the latest."],
        evidence={**evidence, BLOCKS_EVERY_RUN: True},
        scan=secret.scan,
    )


async def _secret_missing(target: Target, secret: VaultSecret) -> Finding:
    """The versions listing answered 404: the secret does not exist, or it is soft-deleted."""
    try:
        deleted = await target.facts.deleted_secret(secret.base_url, secret.ref.secret_name)
    except GatewayError as error:
        return _missing_or_deleted(secret, error)
    if deleted is not None:
        return _soft_deleted(secret, deleted)
    ref, vault = secret.ref, secret.vault_name
    return META.finding(
        Status.FAIL,
        f"Secret {ref.secret_name} not found in Key Vault {vault}",
        detail=(
            f"Credential {secret.credential} ({ref.field}) names secret {ref.secret_name}, which is not in "
            f"Key Vault {vault} ({secret.base_url}), nor among its soft-deleted secrets."
        ),
        fix=[
            f'az keyvault secret list --vault-name {vault} --query "[].name" -o tsv',
            _set_secret(secret),
            PORTAL_CREDENTIAL.format(credential=secret.credential) + ": or correct the secret name.",
        ],
        evidence={**secret.evidence(), "softDeleted": False, BLOCKS_EVERY_RUN: True},
        scan=secret.scan,
    )


def _soft_deleted(secret: VaultSecret, deleted: dict[str, Any]) -> Finding:
    ref, vault = secret.ref, secret.vault_name
    when = parse_time(deleted.get("deletedDate"))
    purge = parse_time(deleted.get("scheduledPurgeDate"))
    on = f" on {human_time(when)}" if when else ""
    until = f" It can be recovered until {human_time(purge)}, when Key Vault purges it." if purge else ""
    return META.finding(
        Status.FAIL,
        f"Secret {ref.secret_name} in Key Vault {vault} is soft-deleted",
        detail=(
            f"Credential {secret.credential} ({ref.field}) names secret {ref.secret_name}, which was "
            f"deleted{on} and is held in Key Vault {vault}'s soft-deleted secrets: Key Vault answers 404 "
            f"SecretNotFound until it is recovered, with all its versions ({RECOVERY_DOC}).{until}"
        ),
        fix=[f"az keyvault secret recover {_names(secret)}"],
        evidence={
            **secret.evidence(),
            "softDeleted": True,
            "deletedSecret": {
                "deletedDate": deleted.get("deletedDate"),
                "scheduledPurgeDate": deleted.get("scheduledPurgeDate"),
            },
            CAUSE_SINCE: iso(when),
            BLOCKS_EVERY_RUN: True,
        },
        scan=secret.scan,
    )


def _missing_or_deleted(secret: VaultSecret, error: GatewayError) -> Finding:
    ref, vault = secret.ref, secret.vault_name
    return META.finding(
        Status.FAIL,
        f"Secret {ref.secret_name} missing or soft-deleted in Key Vault {vault}",
        detail=(
            f"Credential {secret.credential} ({ref.field}) names secret {ref.secret_name}, which Key Vault "
            f"{vault} does not hold (404 SecretNotFound). Whether it was soft-deleted (recover it) or never "
            f"existed (create it) is unknown: {error.reason}."
        ),
        fix=[
            f"az keyvault secret list-deleted --vault-name {vault} --query \"[?name=='{ref.secret_name}']\"",
            "If the command above lists it, recover it:",
            f"az keyvault secret recover {_names(secret)}",
            "If not, create it:",
            _set_secret(secret),
        ],
        evidence={
            **secret.evidence(),
            "softDeleted": None,
            "deletedSecretsError": error.as_evidence(),
            BLOCKS_EVERY_RUN: True,
        },
        scan=secret.scan,
    )


def _unreadable(secret: VaultSecret, error: GatewayError) -> Finding:
    title = f"Could not read the versions of secret {secret.ref.secret_name} in Key Vault {secret.vault_name}"
    finding = META.unknown(title, error, scan=secret.scan, evidence=secret.evidence())
    if error.permission:
        return finding
    needs = f". The bot's identity needs {BOT_LIST_PERMISSION} on Key Vault {secret.vault_name}"
    return replace(finding, detail=finding.detail + needs)


def _needs_runs(secret: VaultSecret, versions: list[SecretVersion], now: datetime) -> bool:
    """Only an enabled version outside its nbf/exp window is judged by the scan's runs."""
    ref = secret.ref
    chosen = pinned(versions, ref.secret_version) if ref.secret_version else latest(versions)
    if chosen is None or chosen.enabled is False:
        return False
    return any(d.kind != EXPIRING for d in date_problems(secret, chosen, now))


async def check_secret(target: Target, secret: VaultSecret) -> Finding:
    try:
        versions = await target.facts.secret_versions(secret.base_url, secret.ref.secret_name)
    except NotFoundError:
        return await _secret_missing(target, secret)
    except GatewayError as error:
        return _unreadable(secret, error)
    refusal = await _refusal(target, secret.scan) if _needs_runs(secret, versions, target.now) else None
    return judge(secret, versions, target.now, refusal)


_LINK_FIX = {
    "credential": "create the credential, or edit the scan to use an existing one",
    "key-vault-connection": (
        "Management > Credentials > Manage Key Vault connections > New (with the vault's base URL)"
    ),
    "vault": (
        "check the Key Vault connection's base URL against the vault URIs that "
        "`az keyvault list --query [].properties.vaultUri -o tsv` lists"
    ),
}


def _broken_chain(outcome: ScanSecrets, error: MissingLinkError) -> Finding:
    return META.finding(
        Status.FAIL,
        f"Scan {outcome.scan}: {error.link.replace('-', ' ')} {error.name or '(unnamed)'} not found",
        detail=error.message[:1].upper() + error.message[1:] + ".",
        fix=[f"In the Purview portal (https://web.purview.azure.com): {_LINK_FIX[error.link]}."],
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
