"""credential-rotation: "Have credentials to your resource changed or been rotated?" (scans no longer run).

Compares each secret's newest enabled version with the scan's last successful run, and the version a
credential pins with the newest one: a scan that used to work and now fails is often reading a value
rotated after its last success, or an old pinned version.

A rotation is a new *version*: Key Vault stores a new value only as a new version, whose `created` is when
it was set; `updated` also moves when someone edits a version's attributes (enabled, exp, nbf, tags,
content type), which leaves the value as it was. So rotations are decided on `created` alone.
https://learn.microsoft.com/en-us/azure/key-vault/secrets/about-secrets#secret-attributes ("created
indicates when this version of the secret was created"; "updated indicates when this version of the secret
was updated") and https://learn.microsoft.com/en-us/rest/api/keyvault/secrets/set-secret ("If the named
secret already exists, Azure Key Vault creates a new version of that secret").
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from checks import fixes
from checks.check import Check, CheckMeta
from checks.errors import GatewayError, NotFoundError
from checks.gateways.api import Json, SecretVersion
from checks.model import Finding, Status
from checks.secret_refs import (
    EPOCH,
    ScanSecrets,
    VaultSecret,
    collect,
    human_time,
    iso,
    latest,
    settle,
)
from checks.sections import SCANS_NO_LONGER_RUN
from checks.target import Target
from checks.times import parse_time

META = CheckMeta(
    id="credential-rotation",
    title="Credential rotated since the last successful scan",
    sections=(SCANS_NO_LONGER_RUN,),
    description=(
        "Warns when a scan's Key Vault secret changed after the scan's last successful run, or when the "
        "credential pins a version older than the newest enabled one."
    ),
)


@dataclass(frozen=True)
class LastSuccess:
    run_id: str
    end: datetime


def last_success(runs: list[Json]) -> LastSuccess | None:
    """The latest run whose status is Succeeded (by endTime, whatever order the list comes in)."""
    done = [
        LastSuccess(str(r.get("id", "")), end)
        for r in runs
        if str(r.get("status", "")).lower() == "succeeded" and (end := parse_time(r.get("endTime")))
    ]
    return max(done, key=lambda s: s.end, default=None)


def _created(v: SecretVersion) -> datetime:
    """When this version's value was set; `updated` only stands in for a version without `created`."""
    return v.created or v.updated or EPOCH


def newest_enabled(versions: list[SecretVersion]) -> SecretVersion | None:
    return latest([v for v in versions if v.enabled is not False])


@dataclass(frozen=True)
class Reason:
    headline: str  # for the title
    sentence: str  # for the detail


def reasons(
    secret: VaultSecret, newest: SecretVersion, versions: list[SecretVersion], success: LastSuccess
) -> list[Reason]:
    """Why the secret the scan reads may no longer be what worked at its last success."""
    found = []
    created = _created(newest)
    if created > success.end:
        found.append(
            Reason(
                "rotated after the last successful run",
                f"secret {secret.ref.secret_name} got a new version {newest.version} on "
                f"{human_time(created)}, after the last successful run ({human_time(success.end)})",
            )
        )
    pin = secret.ref.secret_version.lower()
    old = next((v for v in versions if pin and v.version.lower() == pin), None)
    if old is not None and old.version.lower() != newest.version.lower() and _created(old) < created:
        found.append(
            Reason(
                "the credential pins an older version",
                f"credential {secret.credential} pins version {old.version}, older than the newest enabled "
                f"version {newest.version}",
            )
        )
    return found


def judge(secret: VaultSecret, versions: list[SecretVersion], success: LastSuccess) -> Finding:
    label = f"Secret {secret.ref.secret_name} (Key Vault {secret.vault_name})"
    newest = newest_enabled(versions)
    if newest is None:
        detail = f"{label} has no enabled version: see the key-vault-secret finding"
        return META.skipped(f"Rotation of {label}", detail, scan=secret.scan)
    evidence: dict[str, Any] = {
        **secret.evidence(),
        "lastSuccessfulRun": {"id": success.run_id, "endTime": iso(success.end)},
        "newestEnabledVersion": newest.version,
        "newestCreated": iso(_created(newest)),
        "newestUpdated": iso(newest.updated),
    }
    found = reasons(secret, newest, versions, success)
    if not found:
        detail = (
            f"{label}: its newest enabled version {newest.version} was created on "
            f"{human_time(_created(newest))}, before the last successful run ({human_time(success.end)})."
        )
        if newest.updated and newest.updated > success.end:
            detail += (
                f" Its attributes were edited on {human_time(newest.updated)} (an expiry, tags or the "
                "enabled flag), which does not change the value."
            )
        return META.finding(
            Status.PASS,
            f"{label} unchanged since the last successful run",
            detail=detail,
            evidence=evidence,
            scan=secret.scan,
        )
    # the advice never prints a secret's value (the bot never reads one either): the version's attributes,
    # and the portal's Test connection, which tries the value against the source without showing it
    fix = [
        f"In the Purview portal ({fixes.PURVIEW_PORTAL}): Data Map > Source management > Credentials > "
        f"{secret.credential}: set the secret version to {newest.version} (or leave it empty for the "
        "latest), then Test connection on the scan, which tries the value against the source.",
        fixes.command(
            "az keyvault secret show",
            [
                ("--vault-name", secret.vault_name),
                ("--name", secret.ref.secret_name),
                ("--version", newest.version),
                ("--query", "attributes"),
            ],
        ),
    ]
    text = "; ".join(r.sentence for r in found)
    return META.finding(
        Status.WARN,
        f"{label}: {' and '.join(r.headline for r in found)}: update the credential/scan",
        detail=(
            f"{text[:1].upper()}{text[1:]}. If the scan has failed since, update the credential or scan to "
            "the current secret, and check the value matches what the source expects."
        ),
        fix=fix,
        evidence={**evidence, "reasons": [r.sentence for r in found]},
        scan=secret.scan,
    )


async def _versions(target: Target, secret: VaultSecret) -> list[SecretVersion] | GatewayError:
    try:
        return await target.facts.secret_versions(secret.base_url, secret.ref.secret_name)
    except GatewayError as error:
        return error


async def _runs(target: Target, scan: str) -> list[Json] | GatewayError:
    try:
        return await target.facts.runs(target.source_name, scan)
    except GatewayError as error:
        return error


def _secret_finding(
    secret: VaultSecret, versions: list[SecretVersion] | GatewayError, success: LastSuccess
) -> Finding:
    title = f"Rotation of secret {secret.ref.secret_name} (Key Vault {secret.vault_name})"
    if isinstance(versions, NotFoundError):
        detail = f"secret {secret.ref.secret_name} not found: see the key-vault-secret finding"
        return META.skipped(title, detail, scan=secret.scan)
    if isinstance(versions, GatewayError):
        return META.unknown(title, versions, scan=secret.scan, evidence=secret.evidence())
    return judge(secret, versions, success)


async def _scan_findings(target: Target, outcome: ScanSecrets) -> list[Finding]:
    settled = settle(META, f"Scan {outcome.scan}: credential rotation", outcome)
    if settled is not None:
        return [settled]
    runs, versions = await asyncio.gather(
        _runs(target, outcome.scan), asyncio.gather(*(_versions(target, s) for s in outcome.secrets))
    )
    title = f"Scan {outcome.scan}: credential rotation"
    if isinstance(runs, GatewayError):
        return [META.unknown(title, runs, scan=outcome.scan)]
    success = last_success(runs)
    if success is None:
        detail = f"scan {outcome.scan} has no successful run on record: nothing to compare the secret with"
        return [META.skipped(title, detail, scan=outcome.scan)]
    return [_secret_finding(s, v, success) for s, v in zip(outcome.secrets, versions, strict=True)]


async def run(target: Target) -> list[Finding]:
    outcomes = await collect(target.facts, target.scans)
    per_scan = await asyncio.gather(*(_scan_findings(target, o) for o in outcomes))
    return [f for fs in per_scan for f in fs]


CHECK = Check(meta=META, run=run)
