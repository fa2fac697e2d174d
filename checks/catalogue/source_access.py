"""Guide section "Permission the credential on the data source": can the scan's identity read the data?

Decided from role *definitions* (checks.rbac), never role names. What can be seen from ARM decides; what
cannot (a SQL database's users, ADLS Gen2 POSIX ACLs) is said plainly, as `warn`, with how to make sure;
such a `warn` becomes `fail` only when the scan's newest run failed with an error naming the same cause.

How each decision follows Azure (each with its Microsoft Learn page beside the code):
- blob / ADLS Gen2: the data action by RBAC; on a hierarchical-namespace account POSIX ACLs are evaluated
  after RBAC, so "no data role" there is a `warn`; a deny assignment overrides any grant; a grant on some
  containers only is "partial" for a scan of the whole account;
- account keys: the storage account permits shared-key access (Cosmos DB: local auth);
- SQL logins: the server (managed instance, Synapse workspace) does not have Entra-only authentication on;
- Entra identities on SQL: an Entra admin exists; the database user is not visible (T-SQL given).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from checks import fixes, rbac, sections
from checks.accounts import arm_name
from checks.catalogue import scan_history
from checks.check import Check, CheckMeta
from checks.classify import (
    SQL_ENTRA_ONLY,
    STORAGE_DATA_PERMISSION,
    STORAGE_SHARED_KEY_DISABLED,
    classify_run,
)
from checks.errors import GatewayError, NotFoundError
from checks.facts import Facts
from checks.gateways.api import Json
from checks.identity import (
    Identity,
    credential_type,
    purview_identity,
    scan_credential_name,
    scan_identity,
    scan_uses_msi,
    type_properties,
)
from checks.model import Finding, Status
from checks.source_kinds import (
    Family,
    SourceKind,
    child_scope_name,
    entra_only_id,
    id_part,
    server_id,
    source_kind,
    storage_has_hierarchical_namespace,
)
from checks.target import Target
from checks.times import parse_time
from checks.words import plural

META = CheckMeta(
    id="source-access",
    title="Scan identity can read the data",
    sections=(sections.SOURCE_ACCESS,),
    description=(
        "The identity under test holds the data-plane permission its source kind needs (evaluated from "
        "role definitions, inherited and group assignments); account keys are accepted; SQL servers "
        "have an Entra admin, with the T-SQL for the database user."
    ),
)
_ENTRA_TYPES = ("managedidentity", "serviceprincipal")


@dataclass(frozen=True)
class ScanAuth:
    """How one scan authenticates: an Entra identity, or a secret credential (account key, SQL login…)."""

    identity: Identity | None
    credential: Json | None
    credential_type: str | None  # None for `*Msi` scans

    def evidence(self) -> dict[str, Any]:
        return {
            "identity": self.identity.evidence() if self.identity else None,
            "credential": (self.credential or {}).get("name"),
            "credentialType": self.credential_type,
        }


async def scan_auth(facts: Facts, scan: Json) -> ScanAuth:
    """Resolve a scan's authentication. Raises GatewayError when a lookup gives no answer."""
    if scan_uses_msi(scan):
        return ScanAuth(await purview_identity(facts), None, None)
    name = scan_credential_name(scan)
    if not name:
        return ScanAuth(None, None, None)
    cred = await facts.credential(name)
    ctype = credential_type(cred)
    identity = await scan_identity(facts, scan) if ctype.lower() in _ENTRA_TYPES else None
    return ScanAuth(identity, cred, ctype)


def who(identity: Identity) -> str:
    return f"{identity.display_name} (object id {identity.object_id})"


# --- evidence from the scan's own runs -------------------------------------------------------------------


@dataclass(frozen=True)
class NewestRun:
    """The scan's newest finished run, and what its error says when it failed."""

    run: Json | None
    failed: bool
    cause: str  # the classifier's cause id ("" when none)
    matched: str

    def corroborates(self, cause: str) -> bool:
        """The newest run failed with an error the classifier ties to `cause`."""
        return self.failed and self.cause == cause

    def evidence(self) -> dict[str, Any]:
        run = self.run or {}
        return {
            "runId": run.get("id"),
            "status": run.get("status"),
            "endTime": run.get("endTime"),
            "cause": self.cause or None,
            "matched": self.matched or None,
        }


async def newest_run(target: Target, scan: Json) -> NewestRun:
    """The newest finished run of `scan` (memoised: scan-history reads the same runs). A run history that
    cannot be read corroborates nothing."""
    try:
        runs = await target.facts.runs(target.source_name, str(scan.get("name", "")))
    except GatewayError:
        return NewestRun(None, False, "", "")
    last = scan_history.history(runs).last
    if last is None or not scan_history.is_failed(last):
        return NewestRun(last, False, "", "")
    found = classify_run(last, scan)
    return NewestRun(last, True, found.cause if found else "", found.matched if found else "")


def _iso(value: Any) -> str | None:
    """An ISO 8601 UTC string (`…Z`) for `causeSince`, None when absent or unreadable."""
    when = parse_time(value)
    return when.isoformat().replace("+00:00", "Z") if when else None


async def _read(facts: Facts, resource_id: str) -> Json | GatewayError:
    try:
        return await facts.resource(resource_id)
    except GatewayError as err:
        return err


# --- blob / ADLS Gen2 -------------------------------------------------------------------------------


def _role_fix(identity: Identity, kind: SourceKind, scope: str) -> str:
    return fixes.command(
        "az role assignment create",
        [
            ("--assignee-object-id", identity.object_id),
            ("--assignee-principal-type", "ServicePrincipal"),
            ("--role", kind.data_role),
            ("--scope", "$SCOPE"),
        ],
        variables={"SCOPE": scope},
    )


def _roles_held(grant: rbac.Grant) -> str:
    """'it has Reader' / 'it has Owner, Reader' / 'it has no role': a title's short form (the detail
    names the scopes)."""
    names = list(dict.fromkeys(str(c.get("roleName")) for c in grant.considered if c.get("roleName")))
    return f"it has {', '.join(names)}" if names else "it has no role"


def _acl_fix(identity: Identity, account: str) -> str:
    """Reading the ACLs: the identity needs Execute (--x) on every folder from the root, Read on files
    (said in the finding's detail: a command step carries no comment)."""
    return fixes.command(
        "az storage fs access show",
        [
            ("--account-name", account),
            ("--file-system", "<container>"),
            ("--path", "<folder>"),
            ("--auth-mode", "login"),
        ],
    )


ACL_MODEL_URL = "https://learn.microsoft.com/en-us/azure/storage/blobs/data-lake-storage-access-control-model"
ACL_SENTENCE = (
    "access may be granted by ACLs on the filesystem, which Azure Resource Manager cannot show; grant "
    "Storage Blob Data Reader or check the ACLs: Execute on every folder from the root, Read on files"
)


def _deny_field(deny: dict[str, Any], key: str) -> Any:
    """A deny assignment's field, flat (the evidence shape) or under `properties` (ARM's wire shape)."""
    props = deny.get("properties")
    return deny.get(key) or (props.get(key) if isinstance(props, dict) else None)


def _deny_text(deny: dict[str, Any]) -> tuple[str, str]:
    """A deny assignment's name and the text its owner can be told from."""
    name = str(
        _deny_field(deny, "denyAssignmentName")
        or deny.get("name")
        or arm_name(str(deny.get("id") or ""))
        or "(unnamed)"
    )
    keys = ("denyAssignmentName", "name", "description", "id", "scope", "createdBy")
    text = " ".join(str(_deny_field(deny, k)) for k in keys if _deny_field(deny, k)).lower()
    return name, text


def _deny_owner(deny: dict[str, Any], identity: Identity) -> tuple[str, list[str]]:
    """Who owns a deny assignment (customers cannot remove one) and where to exclude the identity.

    Deny assignments are created by Azure for managed applications, Azure Blueprints locks and deployment
    stacks' deny settings; each excludes principals in its own place.
    https://learn.microsoft.com/en-us/azure/role-based-access-control/deny-assignments
    """
    name, text = _deny_text(deny)
    scope = str(_deny_field(deny, "scope") or "<its scope>")
    oid = identity.object_id
    if "deploymentstacks" in text or "deployment stack" in text:
        return "a deployment stack", [
            f"Deny assignment {name} comes from a deployment stack's deny settings: add {oid} to its "
            "excluded principals when you next deploy the stack "
            "(https://learn.microsoft.com/en-us/azure/azure-resource-manager/management/deployment-stacks).",
            fixes.command(
                "az stack group create",
                [
                    ("--name", "<stack>"),
                    ("--resource-group", "<rg>"),
                    ("--template-file", "<its template>"),
                    ("--deny-settings-mode", "<its mode>"),
                    ("--action-on-unmanage", "<its setting>"),
                    ("--deny-settings-excluded-principals", oid),
                ],
            ),
        ]
    if "blueprint" in text:
        return "an Azure Blueprints assignment", [
            f"Deny assignment {name} is a blueprint lock: in the Azure portal (https://portal.azure.com), "
            f"Blueprints > Assigned blueprints > Update assignment, add {oid} to locks.excludedPrincipals.",
        ]
    if "microsoft.solutions" in text or "managed application" in text or "managedapp" in text:
        return "a managed application", [
            f"Deny assignment {name} protects a managed application's resources: only its publisher can "
            f"exclude {oid}; ask them, or scan data outside the application's managed resource group.",
        ]
    return "Azure (a managed application, blueprint or deployment stack)", [
        f"Deny assignment {name} was created by Azure for a managed application, a blueprint lock or a "
        f"deployment stack (its description, listed by the command below, says which): exclude {oid} there; "
        "it cannot be removed directly.",
        fixes.command(
            "az rest",
            [
                ("--method", "get"),
                (
                    "--url",
                    f"https://management.azure.com{scope}/providers/Microsoft.Authorization/denyAssignments"
                    "?api-version=2022-04-01&$filter=atScope()",
                ),
            ],
        ),
    ]


def _denied(
    kind: SourceKind,
    scan: str,
    identity: Identity,
    rid: str,
    denied: tuple[dict[str, Any], ...],
    evidence: dict[str, Any],
) -> Finding:
    account = arm_name(rid)
    first = denied[0]
    name, _ = _deny_text(first)
    owner, fix = _deny_owner(first, identity)
    names = ", ".join(_deny_text(d)[0] for d in denied)
    scope = _deny_field(first, "scope") or "its scope"
    created = [_iso(_deny_field(d, "createdOn")) for d in denied]
    known = [c for c in created if c]
    if known and len(known) == len(created):
        evidence = {**evidence, "causeSince": min(known)}  # the earliest: a run after it was denied
    return META.finding(
        Status.FAIL,
        f"Deny assignment {name} blocks {identity.display_name} from reading blobs in {account}",
        detail=(
            f"{who(identity)} is denied {kind.data_action} on {rid} by "
            f"{plural(len(denied), 'deny assignment')} {names} (at {scope}), which override any role "
            "assignment. A deny assignment cannot be removed by the "
            f"customer: it is owned by {owner}; exclude the identity there."
        ),
        fix=fix,
        evidence=evidence,
        scan=scan,
    )


def _containers(partial: tuple[dict[str, Any], ...]) -> str:
    return ", ".join(sorted({child_scope_name(str(p.get("scope") or "")) for p in partial}))


async def _blob_rbac(target: Target, kind: SourceKind, scan: Json, identity: Identity, rid: str) -> Finding:
    name = str(scan.get("name", ""))
    action = str(kind.data_action)
    grant, storage = await asyncio.gather(
        rbac.evaluate(target.facts, rid, identity.object_id, action, data=True), _read(target.facts, rid)
    )
    partial, denied = grant.partial, grant.denied_by
    hard = tuple(d for d in denied if not d.get("condition"))  # unconditional: denies outright
    soft = tuple(d for d in denied if d.get("condition"))  # under an ABAC condition: may deny
    evidence: dict[str, Any] = {
        "identity": identity.evidence(),
        "resourceId": rid,
        "action": action,
        **grant.evidence(),
    }
    account = arm_name(rid)
    roles = ", ".join(f"{v['roleName']} at {v['scope']}" for v in grant.via)
    # A deny assignment wins over every role assignment.
    # https://learn.microsoft.com/en-us/azure/role-based-access-control/deny-assignments
    if hard:
        return _denied(kind, name, identity, rid, hard, evidence)
    if grant.granted and not grant.conditional:
        unread = grant.deny_unread if not grant.deny_checked else None
        caveat = (
            f" Deny assignments could not be read ({unread.get('call') or 'the listing failed'}), so none "
            "was matched against this grant."
            if isinstance(unread, dict)
            else ""
        )
        return META.finding(
            Status.PASS,
            f"{identity.display_name} can read blobs in {account}",
            detail=f"{who(identity)} is granted {action} through: {roles}.{caveat}",
            evidence=evidence,
            scan=name,
        )
    if grant.granted:
        conditions = "; ".join(str(v["condition"]) for v in grant.via if v.get("condition"))
        may_deny = "; ".join(f"{_deny_text(d)[0]} ({d.get('condition')})" for d in soft)
        why = (
            f"only through conditional assignments ({roles}). A condition may limit which containers or "
            f"blobs it covers: {conditions}"
            if conditions
            else f"through {roles}"
        )
        if may_deny:
            why += f". Deny assignments may deny it under their condition: {may_deny}"
        return META.finding(
            Status.WARN,
            f"{identity.display_name} can read blobs in {account} only under an ABAC condition",
            detail=f"{who(identity)} is granted {action} {why}.",
            fix=[_role_fix(identity, kind, rid)],
            evidence=evidence,
            scan=name,
        )
    return await _not_granted(target, kind, scan, identity, rid, grant, storage, partial, evidence)


async def _not_granted(
    target: Target,
    kind: SourceKind,
    scan: Json,
    identity: Identity,
    rid: str,
    grant: rbac.Grant,
    storage: Json | GatewayError,
    partial: tuple[dict[str, Any], ...],
    evidence: dict[str, Any],
) -> Finding:
    name = str(scan.get("name", ""))
    action = str(kind.data_action)
    account = arm_name(rid)
    last = await newest_run(target, scan)
    refused = last.corroborates(STORAGE_DATA_PERMISSION)
    evidence = {**evidence, "newestRun": last.evidence() if last.run else None}
    if isinstance(storage, GatewayError) and not refused:
        return META.unknown(
            f"{identity.display_name} has no RBAC data role on {account}, and whether ACLs apply could "
            "not be read",
            storage,
            scan=name,
            evidence=evidence,
        )
    props = (storage.get("properties") or {}) if isinstance(storage, dict) else {}
    hns = storage_has_hierarchical_namespace(kind, props)
    evidence["isHnsEnabled"] = props.get("isHnsEnabled")
    why_refused = (
        f" The newest run failed with {last.matched}: the storage account refused it." if refused else ""
    )
    acl_step = (
        f"Or grant it through ACLs: {identity.display_name} needs Execute on every folder from the root "
        f"and Read on the files the scan reads; list them with the command below ({ACL_MODEL_URL})."
    )
    fix = [_role_fix(identity, kind, rid), *([acl_step, _acl_fix(identity, account)] if hns else [])]
    if partial:
        containers = _containers(partial)
        title = (
            f"{identity.display_name} can read only part of {account} — partial: granted only on "
            f"containers {containers}; the scan reads the whole account"
        )
        acl = f" On this hierarchical-namespace account {ACL_SENTENCE}." if hns else ""
        held = "; ".join(f"{p.get('roleName')} at {p.get('scope')}" for p in partial)
        return META.finding(
            Status.FAIL if refused else Status.WARN,
            title,
            detail=(
                f"{who(identity)} is granted {action} only on child scopes ({held}), not on {rid}. Scan "
                f"{name} reads every container (unless its scope is limited to these), so the others are "
                f"refused.{acl}{why_refused}"
            ),
            fix=fix,
            evidence=evidence,
            scan=name,
        )
    if hns and not refused:
        # ADLS Gen2 evaluates POSIX ACLs after RBAC: no data role is not "no access".
        # https://learn.microsoft.com/en-us/azure/storage/blobs/data-lake-storage-access-control-model
        return META.finding(
            Status.WARN,
            f"{identity.display_name} has no RBAC data role on {account}; ACLs may still grant access",
            detail=(
                f"{who(identity)} holds {rbac.held_roles_text(grant)}, none granting {action} on {rid}. "
                f"{account} has a hierarchical namespace (ADLS Gen2): {ACL_SENTENCE}. See {ACL_MODEL_URL}"
            ),
            fix=fix,
            evidence=evidence,
            scan=name,
        )
    acl = f" {account} has a hierarchical namespace, but its ACLs do not grant it either." if hns else ""
    return META.finding(
        Status.FAIL,
        f"{identity.display_name} cannot read blobs in {account}: {_roles_held(grant)} but no data role",
        detail=(
            f"{who(identity)} holds {rbac.held_roles_text(grant)}. None of these grants the data action "
            f"{action} on {rid} (control-plane roles such as Owner, Contributor or Reader never grant data "
            f"actions). Grant {kind.data_role} on the storage account or a parent scope.{acl}{why_refused}"
        ),
        fix=fix,
        evidence=evidence,
        scan=name,
    )


async def _shared_key(target: Target, scan: Json, cred: str, rid: str) -> Finding:
    name_ = str(scan.get("name", ""))
    props = (await target.facts.resource(rid)).get("properties") or {}
    allowed = props.get("allowSharedKeyAccess")
    evidence: dict[str, Any] = {"resourceId": rid, "credential": cred, "allowSharedKeyAccess": allowed}
    name, rg = arm_name(rid), id_part(rid, "resourceGroups")
    # allowSharedKeyAccess=false refuses every request signed with the account key (and SAS signed with
    # it): https://learn.microsoft.com/en-us/azure/storage/common/shared-key-authorization-prevent
    if allowed is False:
        last = await newest_run(target, scan)
        if last.corroborates(STORAGE_SHARED_KEY_DISABLED):
            evidence["corroboratedBy"] = last.evidence()
        return META.finding(
            Status.FAIL,
            f"{name} refuses account-key access, but scan {name_} uses account-key credential {cred}",
            detail=(
                f"Storage account {rid} has allowSharedKeyAccess=false, so the account key in credential "
                f"{cred} is rejected (KeyBasedAuthenticationNotPermitted) on every run. Allow shared-key "
                "access, or switch the scan to Purview's managed identity (and grant it Storage Blob Data "
                "Reader)."
            ),
            fix=[
                fixes.command(
                    "az storage account update",
                    [("--name", name), ("--resource-group", rg), ("--allow-shared-key-access", "true")],
                )
            ],
            evidence={**evidence, "blocksEveryRun": True},
            scan=name_,
        )
    return META.finding(
        Status.PASS,
        f"{name} accepts account-key access (credential {cred})",
        detail=(
            f"allowSharedKeyAccess is {allowed if allowed is not None else 'not set (default: allowed)'}. "
            "Whether the key itself is current is checked by the Key Vault checks."
        ),
        evidence=evidence,
        scan=name_,
    )


async def _cosmos_key(target: Target, scan: str, cred: str, rid: str) -> Finding:
    props = (await target.facts.resource(rid)).get("properties") or {}
    disabled = props.get("disableLocalAuth") is True
    evidence = {"resourceId": rid, "credential": cred, "disableLocalAuth": props.get("disableLocalAuth")}
    name = arm_name(rid)
    if disabled:
        # disableLocalAuth refuses every key-authenticated request:
        # https://learn.microsoft.com/en-us/azure/cosmos-db/how-to-setup-rbac#disable-local-auth
        return META.finding(
            Status.FAIL,
            f"{name} has key authentication disabled, but scan {scan} uses account-key credential {cred}",
            detail=f"Cosmos DB account {rid} has disableLocalAuth=true: Purview's account key is rejected.",
            fix=[
                fixes.command(
                    "az resource update",
                    [("--ids", "$ACCOUNT"), ("--set", "properties.disableLocalAuth=false")],
                    variables={"ACCOUNT": rid},
                )
            ],
            evidence={**evidence, "blocksEveryRun": True},
            scan=scan,
        )
    return META.finding(
        Status.PASS,
        f"{name} accepts account-key access (credential {cred})",
        detail="disableLocalAuth is not set. Whether the key is current is for the Key Vault checks.",
        evidence=evidence,
        scan=scan,
    )


# --- SQL / Synapse ------------------------------------------------------------------------------------


def _sql_user(identity: Identity, auth: ScanAuth) -> str:
    """The name Entra ID knows the identity by: a user-assigned identity's resource name, else its name."""
    if identity.kind == "managed-identity" and auth.credential:
        mi_resource = type_properties(auth.credential).get("resourceId")
        if mi_resource:
            return arm_name(str(mi_resource))
    return identity.display_name


def _tsql(user: str, database: str | None) -> list[str]:
    where = f"database {database}" if database else "each database the scan reads"
    return [
        f"Connected to {where} as the server's Entra admin (sqlcmd, SSMS or the portal's Query editor), "
        "run these two statements:",
        f"CREATE USER [{user}] FROM EXTERNAL PROVIDER;",
        f"ALTER ROLE db_datareader ADD MEMBER [{user}];",
    ]


def _admin_of(props: Json) -> Json | None:
    admin = props.get("administrators")
    return admin if isinstance(admin, dict) and (admin.get("login") or admin.get("sid")) else None


async def _entra_admin(facts: Facts, server: str) -> tuple[Json | None, str]:
    """The server's Entra admin and where it was seen: the server's `administrators`, else the child
    resource `administrators/ActiveDirectory` (absent = no admin)."""
    child = f"{server}/administrators/ActiveDirectory"
    # both reads at once: the child's id is known up front, and waiting for the server first would put
    # one more round trip on the diagnosis's critical path
    resource, found = await asyncio.gather(
        facts.resource(server), facts.resource(child), return_exceptions=True
    )
    if isinstance(resource, BaseException):
        raise resource
    admin = _admin_of(resource.get("properties") or {})
    if admin:
        return admin, "properties.administrators"
    if isinstance(found, NotFoundError):
        return None, f"{child} (not found)"
    if isinstance(found, BaseException):
        raise found
    return _admin_of({"administrators": found.get("properties") or {}}), child


def _admin_fix(kind: SourceKind, server: str) -> str:
    rg, name = id_part(server, "resourceGroups") or "<resource group>", arm_name(server)
    who_: list[fixes.Arg] = [
        ("--display-name", "<Entra admin user or group>"),
        ("--object-id", "<its object id>"),
    ]
    if kind.resource_type.lower() == "microsoft.sql/managedinstances":
        return fixes.command("az sql mi ad-admin create", [("--resource-group", rg), ("--mi", name), *who_])
    return fixes.command(
        "az sql server ad-admin create", [("--resource-group", rg), ("--server-name", name), *who_]
    )


async def _sql(
    target: Target, kind: SourceKind, scan: Json, auth: ScanAuth, identity: Identity, rid: str
) -> Finding:
    name = str(scan.get("name", ""))
    server = server_id(rid)
    database = (scan.get("properties") or {}).get("databaseName")
    admin, seen_at = await _entra_admin(target.facts, server)
    user = _sql_user(identity, auth)
    evidence = {
        "identity": identity.evidence(),
        "server": server,
        "database": database,
        "entraAdmin": {k: admin.get(k) for k in ("login", "sid", "principalType")} if admin else None,
        "entraAdminSource": seen_at,
        "databaseUser": user,
    }
    if admin is None:
        return META.finding(
            Status.FAIL,
            f"{arm_name(server)} has no Entra admin, so {identity.display_name} cannot sign in",
            detail=(
                f"No Microsoft Entra admin is set on {server} (checked {seen_at}). Without one the server "
                f"accepts no Entra sign-in, so {who(identity)} cannot be given a database user. Set an Entra "
                "admin, then create the user as that admin."
            ),
            fix=[_admin_fix(kind, server), *_tsql(user, database)],
            evidence=evidence,
            scan=name,
        )
    return META.finding(
        Status.WARN,
        f"Cannot see from Azure whether {identity.display_name} has a user in "
        f"{database or 'the database'} on {arm_name(server)}",
        detail=(
            f"The Entra admin of {server} is {admin.get('login') or admin.get('sid')}. Database users "
            f"are not visible through ARM: make sure {who(identity)} exists as a user from the external "
            "provider with db_datareader (run the T-SQL below as the Entra admin)."
        ),
        fix=_tsql(user, database),
        evidence=evidence,
        scan=name,
    )


def _synapse(scan: Json, auth: ScanAuth, identity: Identity, rid: str) -> Finding:
    user = _sql_user(identity, auth)
    return META.finding(
        Status.WARN,
        f"Cannot see from Azure whether {identity.display_name} has a user in the SQL pools of "
        f"{arm_name(rid)}",
        detail=(
            f"Synapse database users are not visible through ARM: make sure {who(identity)} is a user from "
            "the external provider with db_datareader in each dedicated and serverless database scanned, "
            "and has Storage Blob Data Reader on the workspace's primary storage for serverless tables."
        ),
        fix=_tsql(user, None),
        evidence={"identity": identity.evidence(), "workspace": rid, "databaseUser": user},
        scan=str(scan.get("name", "")),
    )


# --- SQL logins and Microsoft Entra-only authentication ------------------------------------------------


@dataclass(frozen=True)
class EntraOnly:
    """Whether a server (managed instance, workspace) refuses SQL logins, and where that was read."""

    enabled: bool | None  # None: could not be read
    seen_at: str
    since: str | None = None  # when the setting last changed, when ARM says (systemData)
    error: GatewayError | None = None


def _entra_only_value(props: Json) -> bool | None:
    value = props.get("azureADOnlyAuthentication")
    return value if isinstance(value, bool) else None


async def _entra_only_mirror(facts: Facts, kind: SourceKind, server: str) -> tuple[bool, str]:
    """The Entra-only flag as the Entra admin (SQL) or the workspace (Synapse) reports it.

    Raises GatewayError when it cannot be read. No admin = not Entra-only (it cannot be on without one).
    """
    if kind.family is Family.SYNAPSE:
        props = (await facts.resource(server)).get("properties") or {}
        return _entra_only_value(props) is True, f"{server} properties.azureADOnlyAuthentication"
    admin, seen_at = await _entra_admin(facts, server)
    return bool(admin) and _entra_only_value(admin or {}) is True, seen_at


async def entra_only(facts: Facts, kind: SourceKind, server: str) -> EntraOnly:
    """Entra-only authentication of a SQL server, managed instance or Synapse workspace.

    The setting's own child `…/azureADOnlyAuthentications/Default` decides; absent (404), the Entra
    admin's `azureADOnlyAuthentication` (the server's `administrators`, or its `administrators/
    ActiveDirectory` child; Synapse: the workspace's property) does. A setting that cannot be read gives
    `enabled=None`, never a guess.
    https://learn.microsoft.com/en-us/azure/azure-sql/database/authentication-azure-ad-only-authentication
    """
    setting_id = entra_only_id(kind, server)

    async def mirror() -> tuple[bool, str] | GatewayError:
        try:
            return await _entra_only_mirror(facts, kind, server)
        except GatewayError as err:
            return err

    setting, seen = await asyncio.gather(_read(facts, setting_id), mirror())
    if isinstance(setting, dict):
        value = _entra_only_value(setting.get("properties") or {})
        if value is not None:
            changed = (setting.get("systemData") or {}).get("lastModifiedAt") if value else None
            return EntraOnly(value, setting_id, since=_iso(changed))
    elif not isinstance(setting, NotFoundError):
        return EntraOnly(None, setting_id, error=setting)
    if isinstance(seen, GatewayError):
        return EntraOnly(None, f"the Entra admin of {server}", error=seen)
    return EntraOnly(seen[0], seen[1])


def _entra_only_fix(kind: SourceKind, server: str) -> str:
    rg, name = id_part(server, "resourceGroups"), arm_name(server)
    if kind.family is Family.SYNAPSE:
        return f"az synapse ad-only-auth disable --resource-group {rg} --workspace-name {name}"
    if kind.resource_type.lower() == "microsoft.sql/managedinstances":
        return f"az sql mi ad-only-auth disable --resource-group {rg} --name {name}"
    return f"az sql server ad-only-auth disable --resource-group {rg} --name {name}"


async def _sql_login(target: Target, kind: SourceKind, scan: Json, auth: ScanAuth, rid: str) -> Finding:
    name = str(scan.get("name", ""))
    cred = str((auth.credential or {}).get("name", ""))
    server = server_id(rid)
    found = await entra_only(target.facts, kind, server)
    evidence: dict[str, Any] = {
        **auth.evidence(),
        "server": server,
        "azureADOnlyAuthentication": found.enabled,
        "entraOnlySource": found.seen_at,
    }
    what = "workspace" if kind.family is Family.SYNAPSE else "server"
    if found.error is not None:
        return META.unknown(
            f"Could not read whether {arm_name(server)} accepts SQL logins (Microsoft Entra-only "
            f"authentication), which scan {name} uses",
            found.error,
            scan=name,
            evidence=evidence,
        )
    if not found.enabled:
        return META.finding(
            Status.PASS,
            f"{arm_name(server)} accepts SQL logins (credential {cred})",
            detail=(
                f"Microsoft Entra-only authentication is off on {what} {server} (read from "
                f"{found.seen_at}). A SQL login's database user is not visible from Azure; the password in "
                "Key Vault is checked by the Key Vault checks, and a failed login shows in the scan history "
                "(error 18456)."
            ),
            evidence=evidence,
            scan=name,
        )
    last = await newest_run(target, scan)
    if last.corroborates(SQL_ENTRA_ONLY):
        evidence["corroboratedBy"] = last.evidence()
    if found.since:
        evidence["causeSince"] = found.since
    database = (scan.get("properties") or {}).get("databaseName")
    seen = f" The newest run failed with it: {last.matched}." if "corroboratedBy" in evidence else ""
    return META.finding(
        Status.FAIL,
        f"{arm_name(server)} accepts only Microsoft Entra sign-ins, but scan {name} uses SQL login "
        f"credential {cred}",
        detail=(
            f"Microsoft Entra-only authentication is on for {what} {server} (azureADOnlyAuthentication=true, "
            f"read from {found.seen_at}): every SQL login is refused with error 18456, whatever the password "
            f"in credential {cred}.{seen} Switch the scan to Purview's managed identity (or a service "
            "principal) with a database user from the external provider, or turn Entra-only authentication "
            "off."
        ),
        fix=[
            f"Either edit scan {name} to use the managed identity of {target.account_name} (Purview portal "
            f"{fixes.PURVIEW_PORTAL}: Data Map > Sources > {target.source_name} > {name} > Edit), then:",
            *_tsql(target.account_name, database),
            "Or allow SQL logins again:",
            _entra_only_fix(kind, server),
        ],
        evidence={**evidence, "blocksEveryRun": True},
        scan=name,
    )


# --- dispatch -----------------------------------------------------------------------------------------


async def _decide(target: Target, kind: SourceKind, scan: Json, rid: str) -> Finding:
    name = str(scan.get("name", ""))
    auth = await scan_auth(target.facts, scan)
    ctype = (auth.credential_type or "").lower()
    cred = str((auth.credential or {}).get("name", ""))
    if auth.identity is not None:
        if kind.family is Family.BLOB:
            return await _blob_rbac(target, kind, scan, auth.identity, rid)
        if kind.family is Family.SQL:
            return await _sql(target, kind, scan, auth, auth.identity, rid)
        if kind.family is Family.SYNAPSE:
            return _synapse(scan, auth, auth.identity, rid)
        return META.skipped(
            f"No identity-based access check for {kind.kind}", f"{kind.kind} has no rule.", scan=name
        )
    if ctype in _ENTRA_TYPES:
        return META.finding(
            Status.UNKNOWN,
            f"Credential {cred} of scan {name} names no identity",
            detail=f"The {auth.credential_type} credential {cred} has no principalId / servicePrincipalId.",
            evidence=auth.evidence(),
            scan=name,
        )
    if ctype == "accountkey" and kind.family is Family.BLOB:
        return await _shared_key(target, scan, cred, rid)
    if ctype == "accountkey" and kind.family is Family.COSMOS:
        return await _cosmos_key(target, name, cred, rid)
    if ctype in ("sqlauth", "basicauth") and kind.family in (Family.SQL, Family.SYNAPSE):
        return await _sql_login(target, kind, scan, auth, rid)
    what = f"{auth.credential_type} credential {cred}" if cred else "no credential"
    return META.skipped(
        f"No automatic access check for {kind.kind} with {what}", f"Scan {name} uses {what}.", scan=name
    )


async def _one(target: Target, kind: SourceKind, scan: Json, rid: str) -> Finding:
    name = str(scan.get("name", ""))
    try:
        return await _decide(target, kind, scan, rid)
    except GatewayError as err:
        return META.unknown(
            f"Could not check the access of scan {name} to {target.source_name}",
            err,
            scan=name,
            evidence={"resourceId": rid},
        )


async def run(target: Target) -> list[Finding]:
    kind = source_kind(target.source_kind)
    rid = target.resource_id
    if kind is None or kind.family in (Family.OTHER, Family.MULTI):
        why = (
            "a multi-source registration: access is granted per resource it enumerates"
            if kind is not None and kind.family is Family.MULTI
            else "no automatic check exists for this kind; follow the connector's prerequisites"
        )
        return [META.skipped(f"Source kind {target.source_kind} is not checked for data access", why)]
    if not rid or not target.scans:
        return META.nothing_to_check(target, "identity")
    return list(await asyncio.gather(*(_one(target, kind, s, rid) for s in target.scans)))


CHECK = Check(meta=META, run=run)
