"""Classify a failed scan run's error text to the guide section that most likely explains it.

Purview publishes no catalogue of scan error codes: what arrives is free text wrapping the underlying
service's error (storage, SQL, Key Vault, the self-hosted IR). So this is an ordered rule table over the
run's texts, case-insensitive, first match wins; more specific rules come first (a Key Vault "secret not
found" before a Key Vault 403, a storage "…using this permission" before the generic "not authorized to
perform this operation").

SQL login failures: `18456` for `<token-identified principal>` means the Entra token was accepted but the
database has no user for the identity (source access). `18456` whose reason is "Azure Active Directory only
authentication is enabled" (newer texts: "Microsoft Entra-only") is a SQL login refused because the server
accepts Microsoft Entra sign-ins only, whatever the password (source access). A plain `18456` "Login failed
for user 'x'" is a SQL-authentication credential whose password is wrong — most often rotated without
updating the Key Vault secret or the scan — which the guide lists under "scans no longer run".

Some texts mean different things on different runtimes: "Internal system error … correlationId" is the
self-hosted runtime failing to reach Purview's managed storage or Event Hub (documented for a self-hosted IR
with private endpoints), but on the Azure IR or a managed VNet IR it is an error inside the Purview service.
So `classify_run` takes the scan (its `connectedVia`) when the caller has it; without it, the old reading
stands.

Each rule may carry a `cause`: a stable id a check can compare with (source-access escalates a `warn` to
`fail` only when the newest run's error has the cause the check suspects).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from checks import sections
from checks.gateways.api import Json
from checks.runtimes import scan_runtime_name

# Causes a check can compare a classification with (`Classification.cause`).
STORAGE_DATA_PERMISSION = "storage-data-permission"  # 403 AuthorizationPermissionMismatch
STORAGE_SHARED_KEY_DISABLED = "storage-shared-key-disabled"  # 403 KeyBasedAuthenticationNotPermitted
SQL_ENTRA_ONLY = "sql-entra-only"  # 18456, Entra-only authentication refuses SQL logins
SQL_FIREWALL = "sql-firewall"  # 40615
SQL_PUBLIC_ACCESS_DENIED = "sql-public-access-denied"  # 47073
SQL_NO_DATABASE_USER = "sql-no-database-user"  # 18456 <token-identified principal>, 4060
SQL_LOGIN_FAILED = "sql-login-failed"  # 18456 for a SQL login
SHIR_CANNOT_REACH_PURVIEW = "shir-cannot-reach-purview"
PURVIEW_INTERNAL_ERROR = "purview-internal-error"
SP_SECRET_EXPIRED = "sp-secret-expired"  # AADSTS7000222
SP_SECRET_INVALID = "sp-secret-invalid"  # AADSTS7000215
SCAN_COLLECTION_OUT_OF_BOUND = "scan-collection-out-of-bound"
POWER_BI_ADMIN_API_REFUSED = "power-bi-admin-api-refused"
SHIR_JRE_MISSING = "shir-jre-missing"
SHIR_TLS_TRUST = "shir-tls-trust"
SHIR_NODE_REGISTRATION = "shir-node-registration"
SHIR_OUTBOUND_BLOCKED = "shir-outbound-blocked"
SHIR_VERSION_TOO_OLD = "shir-version-too-old"
PRIVATE_DNS_RESOLUTION = "private-dns-resolution"  # a host name the runtime could not resolve
PURVIEW_PUBLIC_ACCESS_DISABLED = "purview-public-access-disabled"  # "…is behind a private endpoint"
RUNTIME_SATURATED = "runtime-saturated"  # the runtime's concurrent-jobs limit reached

# Self-hosted runtime host problems (issue 12), shared with checks/catalogue/runtime_host.py, which gives
# each its fix: https://learn.microsoft.com/en-us/purview/manage-integration-runtimes
JRE_MISSING_PATTERNS = (
    r"UserErrorJreNotFound",
    r"jvm\.dll",
    r"Java\s+Runtime\s+Environment\s+(?:cannot\s+be\s+found|(?:is\s+)?not\s+(?:found|installed))",
)
NODE_REGISTRATION_PATTERNS = (
    r"NeedRegistration",
    r"needs?\s+(?:to\s+be\s+)?re-?regist",
    r"(?:node|integration\s+runtime)\b[^\n]{0,80}?\bhas\s+expired",
    r"authentication\s+key\b[^\n]{0,60}?\b(?:is\s+)?(?:invalid|expired)",
)
OUTBOUND_BLOCKED_PATTERNS = (
    r"[\w.-]*servicebus\.windows\.net",
    r"[\w.-]*frontend\.clouddatahub\.net",
    r"[\w.-]*clouddatahub\.net",
)
TLS_TRUST_PATTERNS = (
    r"Could\s+not\s+establish\s+trust\s+relationship\s+for\s+the\s+SSL/TLS",
    r"remote\s+certificate\s+is\s+invalid",
    r"certificate\s+chain\s+was\s+issued\s+by\s+an\s+authority\s+that\s+is\s+not\s+trusted",
    r"PKIX\s+path\s+building\s+failed",
    r"unable\s+to\s+find\s+valid\s+certification\s+path",
)
VERSION_NEEDED_PATTERN = (
    r"(?:self[-\s]hosted\s+)?integration\s+runtime\b[^\n]{0,120}?\bversion\s+(\d+(?:\.\d+){1,3})\s*"
    r"(?:or\s+(?:above|later|higher|newer)|and\s+(?:above|later)|\+)"
)

# The runtime a scan runs on, as far as its `connectedVia` (or the runtime resource) tells.
AZURE_IR = "azure"
MANAGED_VNET_IR = "managed-vnet"
SELF_HOSTED_IR = "self-hosted"
UNKNOWN_IR = "unknown"  # no scan given, or a named runtime whose type is not known


@dataclass(frozen=True)
class Classification:
    section: str  # anchor in checks.sections
    reason: str  # short phrase for a title: "Purview lacks data access"
    matched: str  # the text that matched, as it appears in the error
    cause: str = ""  # a stable id of the cause (the constants above), "" when the rule names none


@dataclass(frozen=True)
class _Rule:
    section: str
    reason: str
    patterns: tuple[str, ...]  # any of these (regex) matches
    context: tuple[str, ...] = ()  # and all of these must appear somewhere in the text too
    cause: str = ""
    runtimes: tuple[str, ...] = ()  # applies only on these runtimes (empty: on any)


_KV = r"key\s*vault|vault\.azure|\.vault\.|keyvault"
_N = r"(?<!\d){}(?!\d)"  # a number not embedded in a longer one
_INTERNAL_ERROR = r"Internal\s+system\s+error[^\n]{0,300}?correlation\s*Id"

_RULES: tuple[_Rule, ...] = (
    # Beyond the guide (issue 12): codes that name their cause exactly, before any generic rule.
    # Entra ID refused a service principal's client secret: expired (7000222) or not a current secret of
    # the app (7000215). https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
    _Rule(
        sections.SP_CREDENTIAL,
        "the service principal's client secret has expired in Entra ID",
        (r"AADSTS7000222",),
        cause=SP_SECRET_EXPIRED,
    ),
    _Rule(
        sections.SP_CREDENTIAL,
        "Entra ID refused the service principal's client secret (not a current secret of the app)",
        (r"AADSTS7000215", r"Invalid\s+client\s+secret\s+provided"),
        cause=SP_SECRET_INVALID,
    ),
    # A scan outside its data source's collection (the source moved after the scan was made).
    _Rule(
        sections.COLLECTIONS,
        "the scan's collection is outside its data source's collection",
        (
            r"Scan_?CollectionOutOfBound",
            r"collection\b[^\n]{0,120}?\bout\s+of\s+(?:the\s+)?bound",
        ),
        cause=SCAN_COLLECTION_OUT_OF_BOUND,
    ),
    # Power BI's admin (scanner) APIs refused Purview: the tenant settings or the allowed security group.
    _Rule(
        sections.POWER_BI,
        "Power BI's admin APIs refused Purview (tenant settings or the allowed security group)",
        (
            r"PowerBINotAuthorizedException",
            r"API\s+is\s+not\s+accessible\s+for\s+application",
            r"Power\s*BI\b[^\n]{0,200}?\b(?:401|403|Unauthorized|Forbidden)\b",
        ),
        cause=POWER_BI_ADMIN_API_REFUSED,
    ),
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
    # Storage. Shared key disallowed first: its 403 text ("…is not permitted on this storage account")
    # must not fall to the generic "not authorized" network rule below.
    # https://learn.microsoft.com/en-us/azure/storage/common/shared-key-authorization-prevent
    _Rule(
        sections.SOURCE_ACCESS,
        "the storage account does not permit shared-key (account key) access",
        (
            r"KeyBasedAuthenticationNotPermitted",
            r"Key\s+based\s+authentication\s+is\s+not\s+permitted",
        ),
        cause=STORAGE_SHARED_KEY_DISABLED,
    ),
    _Rule(
        sections.SOURCE_ACCESS,
        "Purview lacks data access",
        (
            r"AuthorizationPermissionMismatch",
            r"not\s+authorized\s+to\s+perform\s+this\s+operation\s+using\s+this\s+permission",
        ),
        cause=STORAGE_DATA_PERMISSION,
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
        cause=SQL_PUBLIC_ACCESS_DENIED,
    ),
    # 40615: the server's firewall has no rule for the caller's address (for the Azure IR: the "Allow
    # Azure services" rule). https://learn.microsoft.com/en-us/azure/azure-sql/database/firewall-configure
    _Rule(
        sections.PRIVATE_LINK,
        "the SQL firewall blocks Purview",
        (
            _N.format(40615),
            r"Client\s+with\s+IP\s+address\s+\S+\s+is\s+not\s+allowed\s+to\s+access\s+the\s+server",
            r"not\s+allowed\s+to\s+access\s+the\s+server",
        ),
        cause=SQL_FIREWALL,
    ),
    # 18456 with the Entra-only reason, before the other 18456 rules: SQL logins are refused whatever
    # the password. https://learn.microsoft.com/en-us/azure/azure-sql/database/authentication-azure-ad-only-authentication
    _Rule(
        sections.SOURCE_ACCESS,
        "the server accepts only Microsoft Entra sign-ins (SQL logins refused)",
        (
            r"(?:Azure\s+Active\s+Directory|Azure\s+AD|AAD|Microsoft\s+Entra(?:\s+ID)?|Entra(?:\s+ID)?)"
            r"[\s-]+only\s+authentication(?:\s+is)?\s+enabled",
            r"Microsoft\s+Entra[\s-]+only",
        ),
        context=(r"18456|Login\s+failed",),
        cause=SQL_ENTRA_ONLY,
    ),
    _Rule(
        sections.SOURCE_ACCESS,
        "the identity has no database user",
        (
            r"<token-identified\s+principal>",
            r"Cannot\s+open\s+database\s+[^\n]{0,200}?requested\s+by\s+the\s+login",
            r"(?:error|number|code|msg)\W{0,12}4060(?!\d)",
        ),
        cause=SQL_NO_DATABASE_USER,
    ),
    _Rule(
        sections.SCANS_NO_LONGER_RUN,
        "SQL login failed (credential wrong or rotated)",
        (
            _N.format(18456),
            r"Login\s+failed\s+for\s+user",
        ),
        cause=SQL_LOGIN_FAILED,
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
    # Self-hosted runtime machine problems (issue 12), before the generic firewall and runtime rules.
    _Rule(
        sections.RUNTIME_HOST,
        "Java is missing on the self-hosted runtime machine (Parquet/ORC)",
        JRE_MISSING_PATTERNS,
        cause=SHIR_JRE_MISSING,
    ),
    _Rule(
        sections.RUNTIME_HOST,
        "the self-hosted runtime is older than the scan needs",
        (VERSION_NEEDED_PATTERN,),
        cause=SHIR_VERSION_TOO_OLD,
    ),
    _Rule(
        sections.RUNTIME_HOST,
        "the self-hosted runtime node expired or must be registered again",
        NODE_REGISTRATION_PATTERNS,
        cause=SHIR_NODE_REGISTRATION,
    ),
    _Rule(
        sections.RUNTIME_HOST,
        "the self-hosted runtime machine does not trust a TLS certificate (inspecting proxy?)",
        TLS_TRUST_PATTERNS,
        cause=SHIR_TLS_TRUST,
    ),
    _Rule(
        sections.RUNTIME_HOST,
        "the self-hosted runtime machine cannot reach Purview's endpoints (outbound blocked)",
        OUTBOUND_BLOCKED_PATTERNS,
        cause=SHIR_OUTBOUND_BLOCKED,
    ),
    # A name the runtime could not resolve: with private endpoints, the private DNS zone (its A record, its
    # VNet link) or the runtime's DNS forwarder. https://learn.microsoft.com/en-us/azure/private-link/private-endpoint-dns
    _Rule(
        sections.PRIVATE_DNS,
        "the runtime could not resolve a host name (private DNS)",
        (
            r"remote\s+name\s+could\s+not\s+be\s+resolved",
            r"No\s+such\s+host\s+is\s+known",
            r"Name\s+or\s+service\s+not\s+known",
            r"UnknownHostException",
            r"getaddrinfo\s+failed",
            r"could\s+not\s+resolve\s+host",
        ),
        cause=PRIVATE_DNS_RESOLUTION,
    ),
    # Purview account behind a private endpoint (public network access disabled): the caller is not on a
    # network with the account's private endpoints.
    # https://learn.microsoft.com/en-us/purview/catalog-private-link-troubleshoot
    _Rule(
        sections.PURVIEW_PRIVATE,
        "the Purview account is behind a private endpoint",
        (r"Purview\s+account\s+is\s+behind\s+a\s+private\s+endpoint",),
        cause=PURVIEW_PUBLIC_ACCESS_DISABLED,
    ),
    _Rule(sections.PRIVATE_LINK, "a firewall blocks Purview", (r"firewall",)),
    # Self-hosted integration runtime. "Internal system error … correlationId" is documented for a
    # self-hosted IR that cannot reach Purview's managed storage / Event Hub (private endpoints, DNS):
    # https://learn.microsoft.com/en-us/purview/catalog-private-link-troubleshoot
    # On the Azure IR or a managed VNet IR there is no such machine: it is an error inside Purview.
    _Rule(
        sections.SCANS_NO_LONGER_RUN,
        "self-hosted integration runtime cannot reach Purview",
        (_INTERNAL_ERROR,),
        cause=SHIR_CANNOT_REACH_PURVIEW,
        runtimes=(SELF_HOSTED_IR, UNKNOWN_IR),
    ),
    _Rule(
        sections.SCANS_NO_LONGER_RUN,
        "an error inside the Purview service, not a self-hosted runtime (retry; then a support case)",
        (_INTERNAL_ERROR,),
        cause=PURVIEW_INTERNAL_ERROR,
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
    # The runtime is busy: every node at its concurrent-jobs limit, so runs wait in the queue (heuristic
    # wording; the runtime's concurrentJobsLimit / concurrentJobsRunning are what scan-schedule reads).
    _Rule(
        sections.SCANS_NO_LONGER_RUN,
        "the integration runtime is at its concurrent jobs limit (runs queue)",
        (
            r"concurrent\s+jobs?\b[^\n]{0,80}?\b(?:limit|maximum)\b[^\n]{0,40}?\b(?:reached|exceeded)",
            r"(?:reached|exceeded)\b[^\n]{0,40}?\b(?:limit|maximum)\s+(?:number\s+)?of\s+concurrent\s+jobs?",
        ),
        cause=RUNTIME_SATURATED,
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


def _apply(rule: _Rule, text: str, runtime: str) -> str | None:
    if rule.runtimes and runtime not in rule.runtimes:
        return None
    if not all(re.search(c, text, re.IGNORECASE) for c in rule.context):
        return None
    for pattern in rule.patterns:
        found = re.search(pattern, text, re.IGNORECASE)
        if found:
            return found.group(0)
    return None


def runtime_kind(scan: Json | None, runtime: Json | None = None) -> str:
    """The kind of runtime a scan runs on: `connectedVia` null (or the auto-resolve name) is the Azure IR;
    a named runtime is self-hosted or managed VNet by `connectedVia.integrationRuntimeType`, else by the
    runtime resource's `kind` when the caller read it; `UNKNOWN_IR` without a scan or a type."""
    if scan is None:
        return UNKNOWN_IR
    if scan_runtime_name(scan) is None:
        return AZURE_IR
    via = (scan.get("properties") or {}).get("connectedVia")
    declared = via.get("integrationRuntimeType") if isinstance(via, dict) else None
    kind = str(declared or (runtime or {}).get("kind") or "").replace("-", "").replace(" ", "").lower()
    if kind == "selfhosted":
        return SELF_HOSTED_IR
    if kind == "managed":
        return MANAGED_VNET_IR
    return UNKNOWN_IR


def classify_text(text: str, runtime: str = UNKNOWN_IR) -> Classification | None:
    """The first rule matching `text` on that kind of runtime, or None when nothing is recognised."""
    for rule in _RULES:
        matched = _apply(rule, text, runtime)
        if matched is not None:
            return Classification(section=rule.section, reason=rule.reason, matched=matched, cause=rule.cause)
    return None


def classify_run(
    run: Json, scan: Json | None = None, *, runtime: Json | None = None
) -> Classification | None:
    """Classify a run by its error texts; None when the run carries no recognised error.

    `scan` (the run's scan, for its `connectedVia`) and `runtime` (its integration runtime resource, when
    read) let runtime-specific texts be read right; without them a text is read as on any runtime.
    """
    text = error_text(run)
    return classify_text(text, runtime_kind(scan, runtime)) if text else None
