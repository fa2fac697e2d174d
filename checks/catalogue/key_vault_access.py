"""key-vault-access: Purview's managed identity can Get and List the secrets of every vault a scan uses.

Purview reads Key Vault with its own system-assigned identity, whatever the scan's credential, so that
identity is the one under test here. Access-policy vaults are judged by their policy entries (the
identity's own, and those of groups it belongs to, resolved through Microsoft Graph), RBAC vaults by
evaluating role definitions (never role names), including grants on single secrets; the vault's network
is a separate finding, judged against the runtime each scan runs on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any

from checks import fixes
from checks.accounts import arm_name
from checks.check import Check, CheckMeta
from checks.errors import GatewayError
from checks.facts import Facts
from checks.gateways.api import Json
from checks.identity import Identity, purview_identity
from checks.model import Finding, Status
from checks.rbac import Grant, denial_text, evaluate
from checks.runtimes import scan_runtime_name
from checks.secret_refs import ScanSecrets, collect, settle
from checks.sections import KEY_VAULT_ACCESS
from checks.target import Target
from checks.words import plural

META = CheckMeta(
    id="key-vault-access",
    title="Purview managed identity on the Key Vault",
    sections=(KEY_VAULT_ACCESS,),
    description=(
        "Purview's managed identity has Get and List on secrets of every vault a scan's credential uses "
        "(access policies, its groups' included; or RBAC dataActions evaluated from role definitions, "
        "grants on single secrets included); the vault's network lets the scan's runtime in (trusted "
        "services, private endpoints)."
    ),
)
GET_ACTION = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
LIST_ACTION = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
SECRETS_USER_ROLE = "Key Vault Secrets User"  # for the fix command only; decisions use dataActions
KEY_VAULT_READER_ROLE = "Key Vault Reader"  # readMetadata (List) without getSecret, for a vault-wide List
GRAPH_GROUPS_PERMISSION = "Microsoft Graph GroupMember.Read.All (or Directory.Read.All)"

# Microsoft's pages behind each decision.
PURVIEW_KEY_VAULT_DOC = "https://learn.microsoft.com/en-us/purview/manage-credentials#grant-microsoft-purview-access-to-your-azure-key-vault"
POLICY_PRINCIPALS_DOC = "https://learn.microsoft.com/en-us/azure/key-vault/general/assign-access-policy"
SECRET_SCOPE_DOC = "https://learn.microsoft.com/en-us/azure/key-vault/general/rbac-guide"
TRUSTED_SERVICES_DOC = "https://learn.microsoft.com/en-us/azure/key-vault/general/overview-vnet-service-endpoints#trusted-services"
PURVIEW_FIREWALL_DOC = (
    "https://learn.microsoft.com/en-us/purview/manage-credentials#firewall-access-to-azure-key-vault"
)


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

    def secret_scope(self, secret: str) -> str:
        """The ARM scope of one secret (role assignments can be made on it)."""
        return f"{self.id}/secrets/{secret}"

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
# An access policy entry names "a user, application or user group" (POLICY_PRINCIPALS_DOC): an entry for a
# group grants its permissions to the group's members, nested groups included. Compound entries (with an
# applicationId) are not supported by Purview ("We don't currently support compound identities",
# PURVIEW_KEY_VAULT_DOC) and never count.
def _entries(vault: Json) -> list[Json]:
    """The vault's access-policy entries that can apply to an identity (compound ones cannot)."""
    entries = (vault.get("properties") or {}).get("accessPolicies") or []
    return [e for e in entries if isinstance(e, dict) and e.get("objectId") and not e.get("applicationId")]


def policy_entries(vault: Json, object_id: str) -> list[Json]:
    """Access-policy entries for the identity itself."""
    return [e for e in _entries(vault) if str(e["objectId"]).lower() == object_id.lower()]


def secret_permissions(entries: list[Json]) -> set[str]:
    return {str(p).lower() for e in entries for p in ((e.get("permissions") or {}).get("secrets") or [])}


def _get_list(perms: set[str]) -> tuple[bool, bool]:
    return bool(perms & {"get", "all"}), bool(perms & {"list", "all"})


def _group_candidates(vault: Json, object_id: str, perms: set[str]) -> list[Json]:
    """Other principals' entries that would add a missing Get or List, if the identity is in their group."""
    has_get, has_list = _get_list(perms)
    out = []
    for entry in _entries(vault):
        if str(entry["objectId"]).lower() == object_id.lower():
            continue
        get, list_ = _get_list(secret_permissions([entry]))
        if (get and not has_get) or (list_ and not has_list):
            out.append(entry)
    return out


async def judge_policies(facts: Facts, use: VaultUse, identity: Identity) -> Finding:
    direct = policy_entries(use.vault, identity.object_id)
    perms = secret_permissions(direct)
    candidates = _group_candidates(use.vault, identity.object_id, perms)
    via_groups: list[Json] = []
    if candidates:  # only when a group's entry could fill the gap: never a Graph call otherwise
        try:
            groups = {g.lower() for g in await facts.transitive_group_ids(identity.object_id)}
        except GatewayError as error:
            return _groups_unknown(use, identity, direct, perms, candidates, error)
        via_groups = [e for e in candidates if str(e["objectId"]).lower() in groups]
        perms |= secret_permissions(via_groups)
    has_get, has_list = _get_list(perms)
    evidence = _policy_evidence(use, identity, perms, direct, groupEntries=via_groups)
    through = (
        f" (through group{'s' if len(via_groups) > 1 else ''} "
        f"{', '.join(str(e['objectId']) for e in via_groups)})"
        if via_groups
        else ""
    )
    problem = missing_sentence(has_get, has_list)
    if problem is None:
        return META.finding(
            Status.PASS,
            f"{_who(identity)} can Get and List secrets in Key Vault {use.name}",
            detail=(
                f"{_who(identity, oid=True)} has secret permissions {', '.join(sorted(perms))} in the "
                f"access policies of Key Vault {use.name}{through}."
            ),
            evidence=evidence,
            scan=use.scan,
        )
    if not direct and not via_groups:
        problem = "has no access policy"
    wanted = " ".join(sorted((secret_permissions(direct) - {"all"}) | {"get", "list"}))
    target = f"--name {use.name} --object-id {identity.object_id}"
    return META.finding(
        Status.FAIL,
        f"{_who(identity)} {problem} in Key Vault {use.name}",
        detail=(
            f"{_who(identity, oid=True)} {problem} in Key Vault {use.name} (access-policy vault), neither "
            f"directly nor through a group it belongs to{through}; Purview needs Get and List on secrets "
            f"to read the scan's credential ({PURVIEW_KEY_VAULT_DOC})."
        ),
        fix=[fixes.wrap(f"az keyvault set-policy {target} --secret-permissions {wanted}")],
        evidence=evidence,
        scan=use.scan,
    )


def _policy_evidence(
    use: VaultUse, identity: Identity, perms: set[str], direct: list[Json], **entries: list[Json]
) -> dict[str, Any]:
    """What an access-policy verdict decided on; `entries` name lists of policy entries to show."""
    return {
        **use.evidence(),
        "model": "accessPolicy",
        "identity": identity.evidence(),
        "secretPermissions": sorted(perms),
        "policyEntries": len(direct),
        **{
            key: [{"objectId": e["objectId"], "secrets": sorted(secret_permissions([e]))} for e in listed]
            for key, listed in entries.items()
        },
    }


def _groups_unknown(
    use: VaultUse,
    identity: Identity,
    direct: list[Json],
    perms: set[str],
    candidates: list[Json],
    error: GatewayError,
) -> Finding:
    """Entries for other principals could grant what is missing, and Graph cannot say whether they are
    groups of the identity: the bot cannot tell (never a `fail` on an unreadable membership)."""
    has_get, has_list = _get_list(perms)
    own = f"only {', '.join(sorted(perms))}" if perms else "nothing"
    missing = " and ".join(p for p, held in (("Get", has_get), ("List", has_list)) if not held)
    ids = ", ".join(str(e["objectId"]) for e in candidates)
    finding = META.unknown(
        f"Could not tell whether groups give {_who(identity)} {missing} in Key Vault {use.name}",
        error,
        scan=use.scan,
        evidence=_policy_evidence(use, identity, perms, direct, candidateEntries=candidates),
    )
    needs = (
        "" if error.permission else f" The bot's identity needs {GRAPH_GROUPS_PERMISSION} to resolve them."
    )
    detail = (
        f"The access policies of Key Vault {use.name} give {_who(identity, oid=True)} {own} directly; "
        f"entries for {ids} grant {missing} and apply if they are groups it belongs to. Reading its group "
        f"memberships from Microsoft Graph failed: {error.reason}.{needs}"
    )
    return replace(finding, detail=detail)


# --- RBAC ---------------------------------------------------------------------------------------------
# A role assigned on one secret (`…/vaults/V/secrets/S`) grants on that secret only (SECRET_SCOPE_DOC,
# "Secret scope role assignment"). What a scan does with the vault: get the secrets its credential names
# (getSecret on each of them). List (readMetadata) is what Microsoft's guide also asks for; listing the
# vault's secrets (`GET {vault}/secrets`, the portal's secret picker) needs it at the vault itself, while a
# grant on a secret lists only that secret's versions. So: Get must cover every secret the scans read (at
# the vault, or on each secret); List at the vault passes, List on the secrets only is a `warn` (the scans'
# reads work; the vault-wide listing does not), no List at all is a `fail` as the guide asks.
@dataclass(frozen=True)
class SecretCover:
    """Which of the used secrets a grant covers, and how."""

    vault_wide: bool
    on_secrets: dict[str, list[dict[str, Any]]]  # secret (as the scans name it) → child-scope grants
    missing: tuple[str, ...]  # secrets it covers neither way
    conditional: bool

    @property
    def covers_all(self) -> bool:
        return self.vault_wide or not self.missing

    @property
    def some(self) -> bool:
        return self.vault_wide or bool(self.on_secrets)


def secret_cover(use: VaultUse, grant: Grant) -> SecretCover:
    by_scope: dict[str, list[dict[str, Any]]] = {}
    for p in grant.partial:
        by_scope.setdefault(str(p.get("scope", "")).lower().rstrip("/"), []).append(p)
    on_secrets = {
        s: by_scope[use.secret_scope(s).lower()]
        for s in sorted(use.secrets)
        if use.secret_scope(s).lower() in by_scope
    }
    missing = () if grant.granted else tuple(s for s in sorted(use.secrets) if s not in on_secrets)
    partial_conditions = [bool(p.get("condition")) for ps in on_secrets.values() for p in ps]
    conditional = (grant.granted and grant.conditional) or (
        not grant.granted and bool(partial_conditions) and all(partial_conditions)
    )
    return SecretCover(grant.granted, on_secrets, missing, conditional)


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


def _assign(identity: Identity, role: str, scope: str) -> str:
    return fixes.command(
        "az role assignment create",
        [
            ("--assignee-object-id", identity.object_id),
            ("--assignee-principal-type", "ServicePrincipal"),
            ("--role", role),
            ("--scope", "$VAULT"),
        ],
        variables={"VAULT": scope},
    )


def _rbac_finding(
    use: VaultUse, identity: Identity, get: Grant, list_: Grant, evidence: dict[str, Any]
) -> Finding:
    fix = _assign(identity, SECRETS_USER_ROLE, use.id)
    gets, lists = secret_cover(use, get), secret_cover(use, list_)
    evidence = {
        **evidence,
        "getSecretOnSecrets": sorted(gets.on_secrets),
        "readMetadataOnSecrets": sorted(lists.on_secrets),
    }
    denied = "; ".join(t for t in (denial_text(get), denial_text(list_)) if t)
    denied = f" ({denied})" if denied else ""
    if not gets.covers_all or not lists.some:
        return _rbac_fail(use, identity, gets, lists, evidence, fix, denied)
    if gets.conditional or lists.conditional:
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
    where = (
        "on the vault"
        if gets.vault_wide
        else f"on secret{'s' if len(gets.on_secrets) > 1 else ''} {', '.join(gets.on_secrets)} itself"
    )
    if not lists.vault_wide:
        return META.finding(
            Status.WARN,
            f"{_who(identity)} can Get the scans' secrets in Key Vault {use.name}, List only on them",
            detail=(
                f"RBAC grants {_who(identity, oid=True)} getSecret {where} and readMetadata (List) only on "
                f"{plural(len(lists.on_secrets), 'secret')} {', '.join(lists.on_secrets)} of Key Vault "
                f"{use.name} ({SECRET_SCOPE_DOC}). "
                "The scans' reads of those secrets work; listing the vault's secrets (the Purview portal's "
                "secret picker when a credential is created or edited) needs List on the vault itself, "
                f"which Microsoft's guide asks for ({PURVIEW_KEY_VAULT_DOC})."
            ),
            fix=[
                f"Give {_who(identity)} List on the vault (Key Vault Reader reads metadata, never values):",
                _assign(identity, KEY_VAULT_READER_ROLE, use.id),
            ],
            evidence=evidence,
            scan=use.scan,
        )
    return META.finding(
        Status.PASS,
        f"{_who(identity)} can Get and List secrets in Key Vault {use.name}",
        detail=f"RBAC grants {_who(identity, oid=True)} getSecret {where} and readMetadata on Key Vault "
        f"{use.name}.",
        evidence=evidence,
        scan=use.scan,
    )


def _rbac_fail(
    use: VaultUse,
    identity: Identity,
    gets: SecretCover,
    lists: SecretCover,
    evidence: dict[str, Any],
    fix: str,
    denied: str,
) -> Finding:
    if gets.covers_all or not gets.some:
        problem = missing_sentence(gets.covers_all, lists.some) or "has neither Get nor List on secrets"
    else:
        problem = f"has Get on secret {', '.join(gets.on_secrets)} but not on {', '.join(gets.missing)}"
    lacking = " or ".join(a for a, c in ((GET_ACTION, gets.covers_all), (LIST_ACTION, lists.some)) if not c)
    return META.finding(
        Status.FAIL,
        f"{_who(identity)} {problem} in Key Vault {use.name}",
        detail=(
            f"{_who(identity, oid=True)} {problem} in Key Vault {use.name} (RBAC vault): no role "
            f"assigned to it or its groups at the vault or above, nor on the secrets the scans read, "
            f"grants {lacking}{denied}."
        ),
        fix=[fix],
        evidence=evidence,
        scan=use.scan,
    )


# --- network ------------------------------------------------------------------------------------------
# How the vault's network admits Purview (TRUSTED_SERVICES_DOC, PURVIEW_FIREWALL_DOC):
# - Microsoft Purview is on Key Vault's trusted-services list: with `networkAcls.bypass` AzureServices it
#   gets in through the firewall, and even with `publicNetworkAccess: Disabled` ("allowlisted services still
#   bypass and don't require a private endpoint"). `bypass` defaults to AzureServices when not given.
# - `SecuredByPerimeter`: a network security perimeter overrides the bypass; only its access rules admit.
# - A private endpoint to the vault is Purview's path from a managed VNet runtime (a managed private
#   endpoint); "for self-hosted integration runtime, you need to enable trusted Microsoft services".
# - The Azure IR has no address a vault IP rule could name reliably and no VNet: closed with no bypass and
#   no private endpoint, nothing lets it in (`fail`); with IP rules or private endpoints the bot cannot
#   match them to Purview (`warn`).
@dataclass(frozen=True)
class Network:
    public: str  # "enabled" | "disabled" | "securedbyperimeter" | "" (not given)
    default_deny: bool
    trusted: bool
    ip_rules: tuple[str, ...]
    vnet_rules: tuple[str, ...]
    endpoints: tuple[str, ...]  # names of Approved private endpoint connections

    @property
    def state(self) -> str:
        """'open', 'firewall' (public, deny by default), 'closed' (public access disabled), 'perimeter'."""
        if self.public == "securedbyperimeter":
            return "perimeter"
        if self.public == "disabled":
            return "closed"
        return "firewall" if self.default_deny else "open"

    @property
    def admits_purview(self) -> bool:
        return self.state == "open" or (self.state in ("firewall", "closed") and self.trusted)

    def describe(self) -> str:
        if self.state == "closed":
            return "has public network access disabled"
        return "denies public traffic by default (networkAcls.defaultAction Deny)"


def network_of(props: dict[str, Any]) -> Network:
    acls = props.get("networkAcls") or {}
    bypass = acls.get("bypass")
    trusted = (
        True if bypass is None else "azureservices" in {b.strip().lower() for b in str(bypass).split(",")}
    )
    approved = tuple(
        str(c.get("name") or arm_name(str(c.get("id") or "")) or "?")
        for c in props.get("privateEndpointConnections") or []
        if isinstance(c, dict)
        and str(
            (((c.get("properties") or {}).get("privateLinkServiceConnectionState")) or {}).get("status") or ""
        ).lower()
        == "approved"
    )
    return Network(
        public=str(props.get("publicNetworkAccess") or "").lower(),
        default_deny=str(acls.get("defaultAction") or "").lower() == "deny",
        trusted=trusted,
        ip_rules=tuple(str(r.get("value")) for r in acls.get("ipRules") or [] if isinstance(r, dict)),
        vnet_rules=tuple(
            str(r.get("id")) for r in acls.get("virtualNetworkRules") or [] if isinstance(r, dict)
        ),
        endpoints=approved,
    )


def _network_evidence(use: VaultUse, net: Network) -> dict[str, Any]:
    return {
        "publicNetworkAccess": use.props.get("publicNetworkAccess"),
        "networkAcls": use.props.get("networkAcls"),
        "approvedPrivateEndpoints": list(net.endpoints),
        "trustedServicesBypass": net.trusted,
    }


@dataclass(frozen=True)
class Route:
    """The runtime a scan runs on, as far as the vault's network is concerned."""

    kind: str  # "azure" | "managed" | "selfhosted" | "unknown"
    name: str | None = None
    vnet: str | None = None
    error: GatewayError | None = None

    @property
    def key(self) -> tuple[str, str | None]:
        return self.kind, self.name

    def phrase(self) -> str:
        return {
            "azure": "the Azure integration runtime",
            "managed": f"managed VNet integration runtime {self.name}",
            "selfhosted": f"self-hosted integration runtime {self.name}",
        }.get(self.kind, f"integration runtime {self.name}")


async def route_of(facts: Facts, scan: Json) -> Route:
    name = scan_runtime_name(scan)
    if name is None:
        return Route("azure")
    try:
        ir = await facts.integration_runtime(name)
    except GatewayError as error:
        return Route("unknown", name, error=error)
    if str(ir.get("kind", "")).lower() == "managed":
        vnet = ((ir.get("properties") or {}).get("managedVirtualNetworkReference") or {}).get("referenceName")
        return Route("managed", name, str(vnet) if vnet else "default")
    return Route("selfhosted", name)


async def judge_network(facts: Facts, use: VaultUse, scans: dict[str, Json]) -> list[Finding]:
    """Findings only where the vault's network may keep a scan's runtime out; none when it admits Purview."""
    net = network_of(use.props)
    if net.admits_purview:
        return []
    evidence = {**use.evidence(), "network": _network_evidence(use, net)}
    if net.state == "perimeter":
        return [_perimeter(use, evidence)]
    routes = await asyncio.gather(*(route_of(facts, scans[s]) for s in sorted(use.scans) if s in scans))
    by_route: dict[tuple[str, str | None], tuple[Route, list[str]]] = {}
    for scan, route in zip(sorted(s for s in use.scans if s in scans), routes, strict=True):
        by_route.setdefault(route.key, (route, []))[1].append(scan)
    found = await asyncio.gather(
        *(_judge_route(facts, use, net, route, names, evidence) for route, names in by_route.values())
    )
    return [f for f in found if f is not None]


def _scans_text(names: list[str]) -> tuple[str, str | None]:
    """('scan nightly runs' or 'scans a, b run', the one scan a finding is about or None)."""
    one = len(names) == 1
    return f"{'scan' if one else 'scans'} {', '.join(names)} {'runs' if one else 'run'}", (
        names[0] if one else None
    )


_BYPASS_FIX = "az keyvault update --name {vault} --bypass AzureServices"


async def _judge_route(
    facts: Facts, use: VaultUse, net: Network, route: Route, names: list[str], evidence: dict[str, Any]
) -> Finding | None:
    scans, scan = _scans_text(names)
    evidence = {
        **evidence,
        "runtime": {"kind": route.kind, "name": route.name, "managedVirtualNetwork": route.vnet},
    }
    where = f"Key Vault {use.name} {net.describe()} and does not let trusted Microsoft services bypass it"
    if route.kind == "unknown":
        assert route.error is not None
        return META.unknown(
            f"Could not read integration runtime {route.name} of scan {', '.join(names)}: does it reach "
            f"Key Vault {use.name}?",
            route.error,
            scan=scan,
            evidence=evidence,
        )
    if route.kind == "selfhosted":
        return META.finding(
            Status.WARN,
            f"Key Vault {use.name}: trusted services may not bypass its firewall ({route.phrase()})",
            detail=(
                f"{where}. {scans[:1].upper()}{scans[1:]} on {route.phrase()}; Microsoft's page asks "
                "for the trusted-services exception with a self-hosted runtime "
                f"({PURVIEW_FIREWALL_DOC}). Without it, verify that the runtime's machines reach the vault: "
                "their outbound address in the vault's IP rules, their subnet in its virtual network rules, "
                "or a private endpoint whose name resolves to a private address on those machines."
            ),
            fix=[
                _BYPASS_FIX.format(vault=use.name),
                f"Or, on each node of {route.name}, check that the vault's name resolves and answers:",
                f"nslookup {use.name}.vault.azure.net",
                f"Test-NetConnection {use.name}.vault.azure.net -Port 443",
            ],
            evidence=evidence,
            scan=scan,
        )
    if route.kind == "managed":
        return await _managed_route(facts, use, net, route, scans, scan, evidence, where)
    return _azure_route(use, net, route, scans, scan, evidence, where)


def _azure_route(
    use: VaultUse,
    net: Network,
    route: Route,
    scans: str,
    scan: str | None,
    evidence: dict[str, Any],
    where: str,
) -> Finding:
    fix = [_BYPASS_FIX.format(vault=use.name)]
    if net.endpoints or (net.state == "firewall" and net.ip_rules):
        paths = []
        if net.endpoints:
            endpoints = plural(len(net.endpoints), "endpoint")
            paths.append(f"approved private {endpoints} {', '.join(net.endpoints)}")
        if net.state == "firewall" and net.ip_rules:
            paths.append(f"IP rules {', '.join(net.ip_rules)}")
        return META.finding(
            Status.WARN,
            f"Key Vault {use.name}: Purview's Azure runtime may not reach it",
            detail=(
                f"{where}; it is reachable through {' and '.join(paths)}, which the bot cannot match to "
                f"{route.phrase()}, on which {scans}: Purview reaches a vault through a private endpoint "
                "only from a managed VNet runtime, and the Azure runtime has no fixed address. Microsoft's "
                f"way is the trusted-services exception ({PURVIEW_FIREWALL_DOC})."
            ),
            fix=fix,
            evidence=evidence,
            scan=scan,
        )
    return META.finding(
        Status.FAIL,
        f"Key Vault {use.name}'s firewall keeps Purview out: no trusted-services exception, no private path",
        detail=(
            f"{where}, and has no private endpoint or IP rule that could admit {route.phrase()}, on which "
            f"{scans}: Purview cannot read the credential. Microsoft Purview is on Key Vault's "
            f"trusted-services list ({TRUSTED_SERVICES_DOC}): allow trusted services, or scan on a managed "
            "VNet runtime with a managed private endpoint to the vault."
        ),
        fix=fix,
        evidence=evidence,
        scan=scan,
    )


async def _managed_route(
    facts: Facts,
    use: VaultUse,
    net: Network,
    route: Route,
    scans: str,
    scan: str | None,
    evidence: dict[str, Any],
    where: str,
) -> Finding | None:
    try:
        endpoints = await facts.managed_private_endpoints(route.vnet or "default")
    except GatewayError as error:
        title = f"Could not read the managed private endpoints of {route.phrase()}"
        return META.unknown(title, error, scan=scan, evidence=evidence)
    wanted = use.id.lower().rstrip("/")
    match = next(
        (
            e
            for e in endpoints
            if str((e.get("properties") or {}).get("privateLinkResourceId", "")).lower().rstrip("/") == wanted
        ),
        None,
    )
    props = (match or {}).get("properties") or {}
    status = str((props.get("connectionState") or {}).get("status") or "")
    evidence = {
        **evidence,
        "managedPrivateEndpoint": {"name": (match or {}).get("name"), "status": status or None},
    }
    if match is not None and status.lower() == "approved":
        return None
    if match is not None:
        return META.finding(
            Status.FAIL,
            f"Managed private endpoint {match.get('name')} to Key Vault {use.name}: "
            f"{status or 'not approved'}",
            detail=(
                f"{where}; {scans} on {route.phrase()}, whose managed private endpoint "
                f"{match.get('name')} to the vault is {status or 'in no state'}, so no traffic flows. The "
                "vault's owner must approve it (Networking > Private endpoint connections)."
            ),
            fix=[
                fixes.command(
                    "az network private-endpoint-connection list",
                    [("--id", "$VAULT"), ("-o", "table")],
                    variables={"VAULT": use.id},
                ),
                fixes.command(
                    "az network private-endpoint-connection approve",
                    [
                        ("--id", "<connection id from the list above>"),
                        ("--description", "Purview managed VNet"),
                    ],
                ),
                "Or let trusted services in:",
                _BYPASS_FIX.format(vault=use.name),
            ],
            evidence=evidence,
            scan=scan,
        )
    if net.endpoints:
        return META.finding(
            Status.WARN,
            f"Key Vault {use.name}: no managed private endpoint from {route.phrase()}",
            detail=(
                f"{where}; {scans} on {route.phrase()}, which has no managed private endpoint to "
                f"the vault, while the vault has approved private {plural(len(net.endpoints), 'endpoint')} "
                f"{', '.join(net.endpoints)} "
                "that the bot cannot tie to Purview's managed VNet."
            ),
            fix=[
                f"In the Purview portal ({fixes.PURVIEW_PORTAL}): Management > Managed private endpoints > "
                f"New: Key Vault {use.name}, then approve it on the vault.",
                "Or let trusted services in:",
                _BYPASS_FIX.format(vault=use.name),
            ],
            evidence=evidence,
            scan=scan,
        )
    return META.finding(
        Status.FAIL,
        f"Key Vault {use.name}'s firewall keeps Purview out: no trusted-services exception, no private path",
        detail=(
            f"{where}, and {route.phrase()}, on which {scans}, has no managed private endpoint to it: "
            f"Purview cannot read the credential ({PURVIEW_FIREWALL_DOC})."
        ),
        fix=[
            _BYPASS_FIX.format(vault=use.name),
            f"Or, in the Purview portal ({fixes.PURVIEW_PORTAL}): Management > Managed private endpoints > "
            f"New: Key Vault {use.name}, then approve it on the vault.",
        ],
        evidence=evidence,
        scan=scan,
    )


def _perimeter(use: VaultUse, evidence: dict[str, Any]) -> Finding:
    return META.finding(
        Status.WARN,
        f"Key Vault {use.name} is secured by a network security perimeter",
        detail=(
            f"Key Vault {use.name} has publicNetworkAccess SecuredByPerimeter: the perimeter overrides the "
            "trusted-services exception, and only its access rules admit Purview "
            f"({TRUSTED_SERVICES_DOC}). The bot does not read perimeter rules: check that one admits the "
            "Purview account."
        ),
        fix=[
            f"In the Azure portal ({fixes.AZURE_PORTAL}): Network security perimeters > the vault's "
            "perimeter > Inbound access rules: admit the Purview account's subscription or managed identity."
        ],
        evidence=evidence,
        scan=use.scan,
    )


# --- the check ----------------------------------------------------------------------------------------
async def _vault_findings(
    facts: Facts, use: VaultUse, identity: Identity, scans: dict[str, Json]
) -> list[Finding]:
    if use.props.get("enableRbacAuthorization"):
        access_task = judge_rbac(facts, use, identity)
    else:
        access_task = judge_policies(facts, use, identity)
    access, network = await asyncio.gather(access_task, judge_network(facts, use, scans))
    return [access, *network]


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
    scans = {str(s.get("name", "")): s for s in target.scans}
    per_vault = await asyncio.gather(*(_vault_findings(target.facts, u, identity, scans) for u in uses))
    return out + [f for fs in per_vault for f in fs]


CHECK = Check(meta=META, run=run)
