"""Classify a failed scan run's error text to the guide section that most likely explains it.

Purview publishes no catalogue of scan error codes: what arrives is free text wrapping the underlying
service's error (storage, SQL, Key Vault, the self-hosted IR). So this is an ordered rule table over the
run's texts, case-insensitive, first match wins; more specific rules come first (a Key Vault "secret not
found" before a Key Vault 403, a storage "…using this permission" before the generic "not authorized to
perform this operation").

SQL login failures: `18456` for `<token-identified principal>` means the Entra token was accepted but the
database has no user for the identity (source access). A plain `18456` "Login failed for user 'x'" is a
SQL-authentication credential whose password is wrong — most often rotated without updating the Key Vault
secret or the scan — which the guide lists under "scans no longer run".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from checks import sections
from checks.gateways.api import Json


@dataclass(frozen=True)
class Classification:
    section: str  # anchor in checks.sections
    reason: str  # short phrase for a title: "Purview lacks data access"
    matched: str  # the text that matched, as it appears in the error


@dataclass(frozen=True)
class _Rule:
    section: str
    reason: str
    patterns: tuple[str, ...]  # any of these (regex) matches
    context: tuple[str, ...] = ()  # and all of these must appear somewhere in the text too


_KV = r"key\s*vault|vault\.azure|\.vault\.|keyvault"
_N = r"(?<!\d){}(?!\d)"  # a number not embedded in a longer one

_RULES: tuple[_Rule, ...] = (
    # Key Vault: secret missing, before any Key Vault 403 rule
    _Rule(
        sections.KEY_VAULT_SECRET,
        "Key Vault secret or version not found",
        (
            r"SecretNotFound",
            r"secret\b[^\n]{0,200}?\bnot\s+found",
        ),
    ),
    # Key Vault: access policy / RBAC / firewall of the vault
    _Rule(
        sections.KEY_VAULT_ACCESS,
        "Purview cannot read the Key Vault secret",
        (
            r"ForbiddenByRbac",
            r"does\s+not\s+have\s+secrets?\s+(?:get|list)\s+permission",
            r"caller\s+was\s+not\s+found\s+on\s+any\s+access\s+policy",
            r"Microsoft\.KeyVault/vaults/secrets/(?:getSecret|readMetadata)/action",
        ),
    ),
    _Rule(
        sections.KEY_VAULT_ACCESS,
        "Key Vault firewall blocks Purview",
        (
            r"ForbiddenByFirewall",
            r"caller\s+is\s+not\s+a\s+trusted\s+service",
        ),
    ),
    # Storage
    _Rule(
        sections.SOURCE_ACCESS,
        "Purview lacks data access",
        (
            r"AuthorizationPermissionMismatch",
            r"not\s+authorized\s+to\s+perform\s+this\s+operation\s+using\s+this\s+permission",
        ),
    ),
    _Rule(
        sections.PRIVATE_LINK,
        "the source's network rules block Purview",
        (
            r"AuthorizationFailure",
            r"not\s+authorized\s+to\s+perform\s+this\s+operation\b",
        ),
    ),
    # SQL
    _Rule(
        sections.PRIVATE_LINK,
        "the SQL server denies public network access",
        (
            _N.format(47073),
            r"Deny\s+Public\s+Network\s+Access",
        ),
    ),
    _Rule(
        sections.PRIVATE_LINK,
        "the SQL firewall blocks Purview",
        (
            _N.format(40615),
            r"not\s+allowed\s+to\s+access\s+the\s+server",
        ),
    ),
    _Rule(
        sections.SOURCE_ACCESS,
        "the identity has no database user",
        (
            r"<token-identified\s+principal>",
            r"Cannot\s+open\s+database\s+[^\n]{0,200}?requested\s+by\s+the\s+login",
            r"(?:error|number|code|msg)\W{0,12}4060(?!\d)",
        ),
    ),
    _Rule(
        sections.SCANS_NO_LONGER_RUN,
        "SQL login failed (credential wrong or rotated)",
        (
            _N.format(18456),
            r"Login\s+failed\s+for\s+user",
        ),
    ),
    # ARM control plane: the identity cannot read (enumerate) the registered scope or resource
    _Rule(
        sections.SCAN_MULTIPLE,
        "Purview cannot enumerate the subscription or resource group",
        (r"\bAuthorizationFailed\b", r"does\s+not\s+have\s+authorization\s+to\s+perform\s+action"),
        context=(r"scope\s+'/subscriptions/[^'/]+(?:/resourceGroups/[^'/]+)?/?'",),
    ),
    _Rule(
        sections.REGISTER_SINGLE,
        "the identity cannot read the resource",
        (r"\bAuthorizationFailed\b", r"does\s+not\s+have\s+authorization\s+to\s+perform\s+action"),
    ),
    # Key Vault by status only: after every specific code, so a storage or SQL code wins
    _Rule(
        sections.KEY_VAULT_SECRET,
        "Key Vault secret or version not found",
        (r"\bNotFound\b", r"\b404\b"),
        context=(_KV,),
    ),
    _Rule(
        sections.KEY_VAULT_ACCESS,
        "Purview cannot read the Key Vault secret",
        (r"\bAccessDenied\b", r"\bForbidden\b", r"\b403\b"),
        context=(_KV,),
    ),
    # Purview account behind a private endpoint, generic firewalls
    _Rule(
        sections.PRIVATE_LINK,
        "the Purview account is behind a private endpoint",
        (r"Purview\s+account\s+is\s+behind\s+a\s+private\s+endpoint",),
    ),
    _Rule(sections.PRIVATE_LINK, "a firewall blocks Purview", (r"firewall",)),
    # Self-hosted integration runtime
    _Rule(
        sections.SCANS_NO_LONGER_RUN,
        "self-hosted integration runtime cannot reach Purview",
        (r"Internal\s+system\s+error[^\n]{0,300}?correlation\s*Id",),
    ),
    _Rule(
        sections.SCANS_NO_LONGER_RUN,
        "self-hosted integration runtime is out of date",
        (r"Unable\s+to\s+setup\s+config\s+overrides",),
    ),
    _Rule(
        sections.SCANS_NO_LONGER_RUN,
        "FIPS mode on the self-hosted integration runtime",
        (
            r"FIPS\s+validated",
            r"\bFIPS\b",
        ),
    ),
    _Rule(
        sections.SCANS_NO_LONGER_RUN,
        "integration runtime offline or unavailable",
        (
            r"integration\s+runtime\b[^\n]{0,200}?\b(?:offline|unavailable|not\s+available|limited|expired)",
            r"self[-\s]hosted\s+integration\s+runtime",
        ),
    ),
    # Azure Policy
    _Rule(
        sections.SCANS_NO_LONGER_RUN,
        "Azure Policy denied an update",
        (
            r"RequestDisallowedByPolicy",
            r"disallowed\s+by\s+policy",
        ),
    ),
)


def _texts(value: Any) -> list[str]:
    return [value] if isinstance(value, str) and value.strip() else []


def error_text(run: Json) -> str:
    """Every error text of a run, one per line: `errorMessage`, `error.{code,message,details}`,
    `diagnostics.notifications[].message`."""
    parts = _texts(run.get("errorMessage"))
    error = run.get("error")
    if isinstance(error, dict):
        parts += _texts(error.get("code")) + _texts(error.get("message"))
        for detail in error.get("details") or []:
            if isinstance(detail, dict):
                parts += _texts(detail.get("code")) + _texts(detail.get("message"))
    diagnostics = run.get("diagnostics")
    if isinstance(diagnostics, dict):
        for note in diagnostics.get("notifications") or []:
            if isinstance(note, dict):
                parts += _texts(note.get("message"))
    return "\n".join(dict.fromkeys(parts))  # de-duplicated, order kept


def _apply(rule: _Rule, text: str) -> str | None:
    if not all(re.search(c, text, re.IGNORECASE) for c in rule.context):
        return None
    for pattern in rule.patterns:
        found = re.search(pattern, text, re.IGNORECASE)
        if found:
            return found.group(0)
    return None


def classify_text(text: str) -> Classification | None:
    """The first rule matching `text`, or None when nothing is recognised."""
    for rule in _RULES:
        matched = _apply(rule, text)
        if matched is not None:
            return Classification(section=rule.section, reason=rule.reason, matched=matched)
    return None


def classify_run(run: Json) -> Classification | None:
    """Classify a run by its error texts; None when the run carries no recognised error."""
    text = error_text(run)
    return classify_text(text) if text else None
