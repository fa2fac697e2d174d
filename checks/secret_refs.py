"""The chain a credential scan stands on: scan → credential → Key Vault secret → Key Vault connection → vault.

Shared by `key-vault-secret`, `key-vault-access`, `credential-rotation` and `integration-runtime`, so the
walk is written once and every link is read through the memoised `Facts` (once per diagnosis).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from checks.catalogue.scan_history import history
from checks.check import CheckMeta
from checks.classify import error_text
from checks.errors import GatewayError, NotFoundError
from checks.facts import Facts
from checks.gateways.api import Json, SecretVersion
from checks.identity import credential_type, scan_credential_name, scan_uses_msi, type_properties
from checks.model import Finding, Status

KEY_VAULT_SECRET_TYPE = "azurekeyvaultsecret"
MSI_SKIP = "scan uses Purview's managed identity: no secret involved"


@dataclass(frozen=True)
class SecretRef:
    """One `KeyVaultSecret` reference inside a credential's typeProperties."""

    field: str  # where it sits, e.g. "password" or "servicePrincipalKey"
    secret_name: str
    secret_version: str  # "" means: whichever version is the latest
    connection: str  # the Key Vault connection's name (`store.referenceName`)


@dataclass(frozen=True)
class VaultSecret:
    """A reference followed to its vault: what the Key Vault checks decide on."""

    scan: str
    credential: str
    credential_type: str
    ref: SecretRef
    base_url: str  # the Key Vault connection's `baseUrl` (the vault's data-plane URL)
    vault: Json  # the vault's ARM resource

    @property
    def vault_id(self) -> str:
        return str(self.vault.get("id", ""))

    @property
    def vault_name(self) -> str:
        return str(self.vault.get("name", ""))

    def evidence(self) -> dict[str, Any]:
        return {
            "credential": self.credential,
            "credentialType": self.credential_type,
            "field": self.ref.field,
            "keyVaultConnection": self.ref.connection,
            "baseUrl": self.base_url,
            "vault": self.vault_name,
            "vaultId": self.vault_id,
            "secretName": self.ref.secret_name,
            "secretVersion": self.ref.secret_version,
        }


class MissingLinkError(NotFoundError):
    """A link of the chain does not exist: itself the finding of `key-vault-secret`."""

    def __init__(self, link: str, name: str, message: str, *, call: str) -> None:
        super().__init__(call, status=404, code="NotFound", message=message)
        self.link = link  # "credential" | "key-vault-connection" | "vault"
        self.name = name


@dataclass(frozen=True)
class ScanSecrets:
    """Per scan: its secrets, or why none is involved, or why they could not be read."""

    scan: str
    secrets: tuple[VaultSecret, ...] = ()
    skip_reason: str | None = None
    error: GatewayError | None = None


# --- walking the wire documents ---------------------------------------------------------------------
def credential_names(scan: Json) -> list[str]:
    """The scan's credential, plus those of `resourceTypes` in subscription / resource-group scans."""
    names = [scan_credential_name(scan)]
    resource_types = (scan.get("properties") or {}).get("resourceTypes") or {}
    if isinstance(resource_types, dict):
        for spec in resource_types.values():
            cred = spec.get("credential") if isinstance(spec, dict) else None
            if isinstance(cred, dict) and cred.get("referenceName"):
                names.append(str(cred["referenceName"]))
    return list(dict.fromkeys(n for n in names if n))


def _is_secret(node: dict[str, Any]) -> bool:
    declared = str(node.get("type", "")).lower() == KEY_VAULT_SECRET_TYPE
    return declared or ("secretName" in node and "store" in node)


def _walk(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if _is_secret(node):
            yield path, node
            return
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


def secret_refs(type_props: dict[str, Any]) -> list[SecretRef]:
    """Every Key Vault secret a credential references, whatever field holds it."""
    refs = []
    for path, node in _walk(type_props, ""):
        store = node.get("store")
        store = store if isinstance(store, dict) else {}
        refs.append(
            SecretRef(
                field=path,
                secret_name=str(node.get("secretName") or ""),
                secret_version=str(node.get("secretVersion") or ""),
                connection=str(store.get("referenceName") or ""),
            )
        )
    return refs


# --- following the links ----------------------------------------------------------------------------
async def _credential(facts: Facts, scan: str, name: str) -> Json:
    try:
        return await facts.credential(name)
    except NotFoundError as error:
        raise MissingLinkError(
            "credential",
            name,
            f"scan {scan} uses credential {name}, which does not exist in Purview account "
            f"{facts.account_name}",
            call=error.call,
        ) from error


async def _base_url(facts: Facts, credential: str, connection: str) -> str:
    if not connection:
        raise MissingLinkError(
            "key-vault-connection",
            "",
            f"credential {credential} references a secret without a Key Vault connection "
            "(store.referenceName)",
            call=f"read credential {credential}",
        )
    try:
        doc = await facts.key_vault_connection(connection)
    except NotFoundError as error:
        raise MissingLinkError(
            "key-vault-connection",
            connection,
            f"credential {credential} uses Key Vault connection {connection}, which does not exist in "
            f"Purview account {facts.account_name}",
            call=error.call,
        ) from error
    base_url = str((doc.get("properties") or {}).get("baseUrl") or "")
    if not base_url:
        raise MissingLinkError(
            "key-vault-connection",
            connection,
            f"Key Vault connection {connection} has no baseUrl",
            call=f"GET Purview Key Vault connection {connection}",
        )
    return base_url


async def _vault(facts: Facts, connection: str, base_url: str) -> Json:
    vault = await facts.vault_by_uri(base_url)
    if vault is None:
        raise MissingLinkError(
            "vault",
            base_url,
            f"no Key Vault with vaultUri {base_url} (Key Vault connection {connection}) in the subscriptions "
            "the bot can read: the connection's base URL is wrong, the vault was deleted, or it lives in a "
            "subscription the bot has no Reader on",
            call=f"find Key Vault with vaultUri {base_url} in ARM",
        )
    return vault


async def _follow(facts: Facts, scan: str, name: str, cred: Json, ref: SecretRef) -> VaultSecret:
    base_url = await _base_url(facts, name, ref.connection)
    vault = await _vault(facts, ref.connection, base_url)
    return VaultSecret(scan, name, credential_type(cred), ref, base_url, vault)


async def _credential_secrets(facts: Facts, scan: str, name: str) -> list[VaultSecret]:
    cred = await _credential(facts, scan, name)
    refs = secret_refs(type_properties(cred))
    return list(await asyncio.gather(*(_follow(facts, scan, name, cred, r) for r in refs)))


async def scan_secrets(facts: Facts, scan: Json) -> list[VaultSecret]:
    """Every Key Vault secret the scan's credentials use, each followed to its vault.

    Raises MissingLinkError when a link does not exist, GatewayError when one cannot be read.
    """
    scan_name = str(scan.get("name", ""))
    per_credential = await asyncio.gather(
        *(_credential_secrets(facts, scan_name, n) for n in credential_names(scan))
    )
    return [secret for secrets in per_credential for secret in secrets]


async def _outcome(facts: Facts, scan: Json) -> ScanSecrets:
    name = str(scan.get("name", ""))
    if scan_uses_msi(scan):
        return ScanSecrets(name, skip_reason=MSI_SKIP)
    if not credential_names(scan):
        return ScanSecrets(name, skip_reason="scan names no credential: no secret involved")
    try:
        secrets = await scan_secrets(facts, scan)
    except GatewayError as error:
        return ScanSecrets(name, error=error)
    if not secrets:
        creds = ", ".join(credential_names(scan))
        return ScanSecrets(name, skip_reason=f"credential {creds} holds no Key Vault secret")
    return ScanSecrets(name, secrets=tuple(secrets))


async def _prefetch_vaults(facts: Facts, needed: bool) -> None:
    """Start listing vaults beside the credential reads; a failure surfaces where the list is used."""
    if needed:
        try:
            await facts.prefetch_vaults()
        except GatewayError:  # the subscriptions could not be listed: `vault_by_uri` raises it again
            pass


async def collect(facts: Facts, scans: list[Json]) -> list[ScanSecrets]:
    """`scan_secrets` for every scan, concurrently; never raises a GatewayError."""
    needed = any(not scan_uses_msi(s) and credential_names(s) for s in scans)
    outcomes, _ = await asyncio.gather(
        asyncio.gather(*(_outcome(facts, s) for s in scans)), _prefetch_vaults(facts, needed)
    )
    return list(outcomes)


def settle(meta: CheckMeta, title: str, outcome: ScanSecrets) -> Finding | None:
    """The finding of check `meta` for a scan with nothing for it to decide on; None when it has secrets."""
    if outcome.skip_reason:
        return meta.skipped(title, outcome.skip_reason, scan=outcome.scan)
    if isinstance(outcome.error, MissingLinkError):
        detail = f"{outcome.error.message}: see the key-vault-secret finding"
        return meta.skipped(title, detail, scan=outcome.scan)
    if outcome.error is not None:
        return meta.unknown(title, outcome.error, scan=outcome.scan)
    return None


# --- wire values and finding parts shared by these checks ----------------------------------------
EPOCH = datetime.min.replace(tzinfo=UTC)  # sorts before any real timestamp


def latest(versions: list[SecretVersion]) -> SecretVersion | None:
    """The version Key Vault serves when none is named: the most recently created one."""
    return max(versions, key=lambda v: v.created or v.updated or EPOCH, default=None)


def iso(value: datetime | None) -> str | None:
    """A datetime as evidence carries it: ISO 8601 with `Z`."""
    return value.isoformat().replace("+00:00", "Z") if value else None


def human_time(value: datetime) -> str:
    """A datetime as a detail sentence shows it."""
    return value.strftime("%Y-%m-%d %H:%M UTC")


@dataclass
class Problem:
    """One reason a finding is not a pass, with the fix lines that address it."""

    status: Status
    sentence: str
    fix: list[str] = field(default_factory=list)


# --- what the scan's own runs say about the secret's value ----------------------------------------
# Error texts in which the *source* refused the password, key or client secret the scan presented: the
# value Purview read from Key Vault is no longer (or never was) the source's. Checked in this order; texts
# that name another cause of the same error number are excluded (an Entra-only SQL server refuses every SQL
# login whatever its password; `<token-identified principal>` is an Entra identity without a database user).
_REFUSALS: tuple[tuple[str, str], ...] = (
    # Microsoft Entra ID: a service principal's client secret is wrong (7000215) or expired (7000222)
    # https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
    ("service principal secret refused", r"AADSTS7000215|AADSTS7000222|invalid\s+client\s+secret"),
    # Storage account key: the Shared Key signature does not verify
    # https://learn.microsoft.com/en-us/rest/api/storageservices/authorize-with-shared-key
    (
        "storage account key refused",
        r"MAC\s+signature\s+found\s+in\s+the\s+HTTP\s+request[^\n]{0,300}?not\s+the\s+same\s+as\s+any\s+"
        r"computed\s+signature|Server\s+failed\s+to\s+authenticate\s+the\s+request[^\n]{0,300}?signature",
    ),
    # SQL Server / Azure SQL login failed (error 18456) for a SQL login
    # https://learn.microsoft.com/en-us/sql/relational-databases/errors-events/mssqlserver-18456-database-engine-error
    ("SQL login refused", r"(?<!\d)18456(?!\d)|Login\s+failed\s+for\s+user"),
    # Other engines Purview scans with a Basic credential: PostgreSQL 28P01, MySQL 1045, Oracle ORA-01017
    (
        "password refused",
        r"password\s+authentication\s+failed\s+for\s+user|Access\s+denied\s+for\s+user|ORA-01017|"
        r"invalid\s+username/password|incorrect\s+username\s+or\s+password",
    ),
)
_NOT_A_REFUSAL = (
    r"<token-identified\s+principal>",
    r"(?:Azure\s+Active\s+Directory|Azure\s+AD|AAD|Microsoft\s+Entra(?:\s+ID)?|Entra(?:\s+ID)?)[\s-]+only",
)


@dataclass(frozen=True)
class Refusal:
    """The scan's newest finished run failed because the source refused the secret's value."""

    run_id: str
    end: str | None
    reason: str  # "SQL login refused"
    matched: str  # the words of the error that say so

    def evidence(self) -> dict[str, Any]:
        return {"runId": self.run_id, "endTime": self.end, "reason": self.reason, "matched": self.matched}


def refusal_in(text: str) -> tuple[str, str] | None:
    """(reason, matched words) when an error text says the source refused the key or password."""
    if any(re.search(p, text, re.IGNORECASE) for p in _NOT_A_REFUSAL):
        return None
    for reason, pattern in _REFUSALS:
        found = re.search(pattern, text, re.IGNORECASE)
        if found:
            return reason, found.group(0)
    return None


def newest_refusal(runs: list[Json]) -> Refusal | None:
    """A `Refusal` when the scan's newest finished run failed with such an error; None otherwise."""
    last = history(runs).last
    if last is None or str(last.get("status") or "").lower() != "failed":
        return None
    found = refusal_in(error_text(last))
    if found is None:
        return None
    return Refusal(str(last.get("id") or ""), last.get("endTime"), *found)
