"""credential-expiry: the client secret of a scan's service principal has expired in Microsoft Entra ID.

The Key Vault copy of a secret can be fine (enabled, no `exp`) while the secret itself has expired on the app
registration: Entra ID then refuses the sign-in with `AADSTS7000222` ("the provided client secret keys are
expired"), or with `AADSTS7000215` ("invalid client secret") when Key Vault holds something that is no
current secret of the app (the secret's ID instead of its value, a deleted secret).
https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes

Evidence: Microsoft Graph `GET /v1.0/applications?$filter=appId eq '{appId}'` — the app registration's
`passwordCredentials[].endDateTime` (metadata only: Graph never returns a secret's value on a read,
https://learn.microsoft.com/graph/api/resources/passwordcredential), which needs the Graph application
permission Application.Read.All. Purview's service-principal credential signs in with a client secret kept in
Key Vault, so client secrets decide; certificates (`keyCredentials`) are reported, not counted.
Which of several secrets Key Vault holds cannot be told without reading the value (never done), so a secret
that expires within 30 days is a `warn` even when another lasts longer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from checks import fixes, sections
from checks.catalogue import scan_history
from checks.check import Check, CheckMeta
from checks.classify import error_text
from checks.errors import GatewayError, NotFoundError
from checks.gateways.api import Json
from checks.identity import credential_type, type_properties
from checks.model import Finding, Status
from checks.run_evidence import CAUSE_SINCE
from checks.secret_refs import VaultSecret, credential_names, human_time, iso, scan_secrets
from checks.target import Target
from checks.times import parse_time

META = CheckMeta(
    id="credential-expiry",
    title="Service principal's client secret expired in Entra ID",
    sections=(sections.SP_CREDENTIAL,),
    description=(
        "For scans whose credential is a service principal: the app registration's client secrets "
        "(Microsoft Graph), failing when every one has expired, warning when one expires within 30 days."
    ),
)

SOON = timedelta(days=30)
EXPIRED_CODE = "AADSTS7000222"
INVALID_CODE = "AADSTS7000215"
APP_CREDENTIALS_BLADE = "https://entra.microsoft.com/#view/Microsoft_AAD_RegisteredApps/ApplicationMenuBlade/~/Credentials/appId/{}"


@dataclass(frozen=True)
class AppSecret:
    """One `passwordCredential` (client secret) or `keyCredential` (certificate): metadata only."""

    key_id: str
    name: str
    end: datetime | None  # None: no end date

    @classmethod
    def of(cls, doc: Json) -> AppSecret:
        return cls(
            key_id=str(doc.get("keyId") or ""),
            name=str(doc.get("displayName") or doc.get("keyId") or "(unnamed)"),
            end=parse_time(doc.get("endDateTime")),
        )

    def evidence(self) -> dict[str, Any]:
        return {"keyId": self.key_id, "displayName": self.name, "endDateTime": iso(self.end)}

    def label(self) -> str:
        until = human_time(self.end) if self.end else "no end date"
        return f"{self.name} ({until})"


@dataclass(frozen=True)
class SpCredential:
    """A scan's credential of type ServicePrincipal, with the app id it signs in as."""

    scan: str
    name: str
    app_id: str
    vault_secret: VaultSecret | None  # where its client secret lives, when the chain could be followed


def _secrets(app: Json, key: str) -> list[AppSecret]:
    docs = app.get(key)
    return [AppSecret.of(d) for d in docs if isinstance(d, dict)] if isinstance(docs, list) else []


def run_code(runs: list[Json]) -> tuple[str, Json] | None:
    """`AADSTS7000222` / `AADSTS7000215` with the run, when the scan's newest finished run failed so."""
    last = scan_history.history(runs).last
    if last is None or not scan_history.is_failed(last):
        return None
    text = error_text(last).upper()
    for code in (EXPIRED_CODE, INVALID_CODE):
        if code in text:
            return code, last
    return None


def fix_steps(cred: SpCredential) -> list[str]:
    """A new client secret written straight into the vault (never printed), then the credential's test."""
    vs = cred.vault_secret
    vault = vs.vault_name if vs and vs.vault_name else "<vault of Key Vault connection>"
    secret = vs.ref.secret_name if vs else "<secret name of credential>"
    pinned = vs.ref.secret_version if vs else ""
    steps = [
        "Add a client secret to the app and write it straight into the credential's Key Vault secret: the "
        "command below never prints the new value (it goes from Entra ID to Key Vault inside the shell).",
        # the reset's answer goes into a variable, never to the screen; `&&`: a failed reset writes nothing
        f"APP_ID={fixes.value(cred.app_id)}\n"
        'NEW_SECRET=$(az ad app credential reset --id "$APP_ID" --append --display-name purview-scan '
        "--years 1 --query password -o tsv) &&\n"
        + fixes.command(
            "az keyvault secret set",
            [
                ("--vault-name", vault),
                ("--name", secret),
                ("--value", "$NEW_SECRET"),
                ("--query", "attributes"),
            ],
        ),
    ]
    portal = (
        f"In the Microsoft Purview portal (https://web.purview.azure.com), Data Map > Source management > "
        f"Credentials > {cred.name}: "
    )
    if pinned:
        portal += f"the credential pins secret version {pinned}: clear it (latest) or set the new version, "
    else:
        portal += "it reads the latest version of the secret, so the new one applies: "
    portal += f"run Test connection on scan {cred.scan}."
    steps.append(portal)
    steps.append(
        "Delete the expired client secrets of the app once the scan runs again: "
        + APP_CREDENTIALS_BLADE.format(cred.app_id)
    )
    return steps


def judge(cred: SpCredential, app: Json | None, runs: list[Json], now: datetime) -> Finding:
    title = f"Scan {cred.scan}: client secret of app {cred.app_id} (credential {cred.name})"
    base: dict[str, Any] = {"credential": cred.name, "appId": cred.app_id}
    if cred.vault_secret is not None:
        base["keyVaultSecret"] = cred.vault_secret.evidence()
    if app is None:
        return META.finding(
            Status.UNKNOWN,
            title,
            detail=(
                f"This tenant has no app registration with app id {cred.app_id} (a multi-tenant app "
                "registered in another tenant, or deleted), so the bot cannot see its client secrets. Check "
                "Certificates & secrets in the tenant that owns the app."
            ),
            fix=[f"Open the app's Certificates & secrets: {APP_CREDENTIALS_BLADE.format(cred.app_id)}"],
            evidence=base,
            scan=cred.scan,
        )
    secrets = _secrets(app, "passwordCredentials")
    certificates = _secrets(app, "keyCredentials")
    display = str(app.get("displayName") or cred.app_id)
    title = f"Scan {cred.scan}: client secret of {display} (app id {cred.app_id}, credential {cred.name})"
    evidence: dict[str, Any] = {
        **base,
        "application": {"id": app.get("id"), "displayName": display},
        "clientSecrets": [s.evidence() for s in secrets],
        "certificates": [c.evidence() for c in certificates],
    }
    label = f"app {display} ({cred.app_id})"
    valid = [s for s in secrets if s.end is None or s.end > now]
    expired = [s for s in secrets if s.end is not None and s.end <= now]
    code = run_code(runs)
    if code is not None:
        evidence["newestRun"] = {"id": code[1].get("id"), "endTime": code[1].get("endTime"), "code": code[0]}
    fix = fix_steps(cred)
    if not secrets:
        return META.finding(
            Status.WARN,
            f"{title}: the app has no client secret",
            detail=(
                f"{label} has no client secret in Entra ID, and Purview's service-principal credential "
                "signs in with one (certificates are not used by it). Unless the secret lives on the service "
                "principal itself, the scan cannot sign in: add a client secret and store it in Key Vault."
            ),
            fix=fix,
            evidence=evidence,
            scan=cred.scan,
        )
    if not valid:
        newest = max(expired, key=lambda s: s.end or now)
        return META.finding(
            Status.FAIL,
            f"{title}: every client secret has expired",
            detail=(
                f"Every client secret of {label} has expired in Entra ID (the last, {newest.name}, on "
                f"{human_time(newest.end or now)}): Entra ID refuses the scan's sign-in ({EXPIRED_CODE}) "
                "whatever Key Vault holds. Create a new secret and store it in the credential's Key Vault "
                "secret."
            ),
            fix=fix,
            evidence={**evidence, CAUSE_SINCE: iso(newest.end)},
            scan=cred.scan,
        )
    if code is not None:
        meaning = (
            "Key Vault holds one of the app's expired client secrets"
            if code[0] == EXPIRED_CODE
            else "the value in Key Vault is no current client secret of the app (often the secret's ID was "
            "stored instead of its value, or that secret was deleted)"
        )
        return META.finding(
            Status.FAIL,
            f"{title}: Entra ID refused the secret ({code[0]})",
            detail=(
                f"The newest run failed with {code[0]}: {meaning}. {label} has valid secrets "
                f"({', '.join(s.label() for s in valid)}), but Entra ID shows a secret's value only when it "
                "is created: create a new one and store it in Key Vault."
            ),
            fix=fix,
            evidence=evidence,
            scan=cred.scan,
        )
    soon = sorted((s for s in valid if s.end is not None and s.end - now <= SOON), key=lambda s: s.end or now)
    if soon:
        first = soon[0]
        days = max(0, ((first.end or now) - now).days)
        others = [s for s in valid if s not in soon]
        detail = (
            f"Client secret {first.name} of {label} expires on {human_time(first.end or now)} (in {days} "
            "days). If Key Vault holds that secret, the scan stops then; the bot cannot tell which secret "
            "Key Vault holds without reading its value."
        )
        if others:
            detail += f" Secrets that last longer: {', '.join(s.label() for s in others)}."
        return META.finding(
            Status.WARN,
            f"{title}: a client secret expires in {days} days",
            detail=detail,
            fix=fix,
            evidence=evidence,
            scan=cred.scan,
        )
    detail = f"{label} has valid client secrets: {', '.join(s.label() for s in valid)}."
    if expired:
        detail += (
            f" Expired ones: {', '.join(s.label() for s in expired)} (harmless unless Key Vault holds one)."
        )
    return META.finding(
        Status.PASS, f"{title}: valid for more than 30 days", detail=detail, evidence=evidence, scan=cred.scan
    )


async def _sp_credentials(target: Target, scan: Json) -> list[SpCredential] | GatewayError:
    """The scan's ServicePrincipal credentials (a missing credential is key-vault-secret's finding)."""
    name = str(scan.get("name", ""))
    found: list[SpCredential] = []
    for cred_name in credential_names(scan):
        try:
            cred = await target.facts.credential(cred_name)
        except NotFoundError:
            continue
        except GatewayError as error:
            return error
        app_id = type_properties(cred).get("servicePrincipalId")
        if credential_type(cred).lower() == "serviceprincipal" and app_id:
            found.append(SpCredential(name, cred_name, str(app_id), None))
    if not found:
        return found
    try:
        secrets = await scan_secrets(target.facts, scan)
    except GatewayError:  # the vault chain is key-vault-secret's concern; the fix then names placeholders
        secrets = []
    return [
        SpCredential(c.scan, c.name, c.app_id, next((s for s in secrets if s.credential == c.name), None))
        for c in found
    ]


async def _app(target: Target, app_id: str) -> Json | GatewayError | None:
    try:
        return await target.facts.application_by_app_id(app_id)
    except GatewayError as error:
        return error


async def _runs(target: Target, scan: str) -> list[Json]:
    try:
        return await target.facts.runs(target.source_name, scan)
    except GatewayError:  # without runs the decision rests on Graph alone
        return []


async def _scan_findings(target: Target, scan: Json) -> list[Finding]:
    name = str(scan.get("name", ""))
    title = f"Scan {name}: service principal client secret"
    creds = await _sp_credentials(target, scan)
    if isinstance(creds, GatewayError):
        return [META.unknown(title, creds, scan=name)]
    if not creds:
        return [META.skipped(title, "the scan's credential is not a service principal", scan=name)]
    apps, runs = await asyncio.gather(
        asyncio.gather(*(_app(target, c.app_id) for c in creds)), _runs(target, name)
    )
    out = []
    for cred, app in zip(creds, apps, strict=True):
        if isinstance(app, GatewayError):
            out.append(
                META.unknown(f"{title} of app {cred.app_id}", app, scan=name, evidence={"appId": cred.app_id})
            )
        else:
            out.append(judge(cred, app, runs, target.now))
    return out


async def run(target: Target) -> list[Finding]:
    if not target.scans:
        return [META.skipped(f"{target.source_name} has no scans", "No credential to check.")]
    per_scan = await asyncio.gather(*(_scan_findings(target, s) for s in target.scans))
    return [f for fs in per_scan for f in fs]


CHECK = Check(meta=META, run=run)
