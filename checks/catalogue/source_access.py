"""Guide section "Permission the credential on the data source": can the scan's identity read the data?

Decided from role *definitions* (checks.rbac), never role names. What can be seen from ARM decides; what
cannot (a SQL database's users) is said plainly, with the T-SQL to make sure.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from checks import rbac, sections
from checks.accounts import arm_name
from checks.check import Check, CheckMeta
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
from checks.source_kinds import Family, SourceKind, id_part, server_id, source_kind
from checks.target import Target

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


# --- blob / ADLS Gen2 -------------------------------------------------------------------------------


def _role_fix(identity: Identity, kind: SourceKind, scope: str) -> str:
    return (
        f"az role assignment create --assignee-object-id {identity.object_id} "
        f'--assignee-principal-type ServicePrincipal --role "{kind.data_role}" --scope {scope}'
    )


async def _blob_rbac(target: Target, kind: SourceKind, scan: str, identity: Identity, rid: str) -> Finding:
    action = str(kind.data_action)
    grant = await rbac.evaluate(target.facts, rid, identity.object_id, action, data=True)
    evidence = {"identity": identity.evidence(), "resourceId": rid, "action": action, **grant.evidence()}
    account = arm_name(rid)
    roles = ", ".join(f"{v['roleName']} at {v['scope']}" for v in grant.via)
    if grant.granted and not grant.conditional:
        return META.finding(
            Status.PASS,
            f"{identity.display_name} can read blobs in {account}",
            detail=f"{who(identity)} is granted {action} through: {roles}.",
            evidence=evidence,
            scan=scan,
        )
    if grant.granted:
        conditions = "; ".join(str(v["condition"]) for v in grant.via)
        return META.finding(
            Status.WARN,
            f"{identity.display_name} can read blobs in {account} only under an ABAC condition",
            detail=(
                f"{who(identity)} is granted {action} only through conditional assignments ({roles}). "
                f"A condition may limit which containers or blobs it covers: {conditions}"
            ),
            fix=[_role_fix(identity, kind, rid)],
            evidence=evidence,
            scan=scan,
        )
    return META.finding(
        Status.FAIL,
        f"{identity.display_name} cannot read blobs in {account}: no role grants {action}",
        detail=(
            f"{who(identity)} holds {rbac.held_roles_text(grant)}. None of these grants the data action "
            f"{action} on {rid} (control-plane roles such as Owner, Contributor or Reader never grant data "
            f"actions). Grant {kind.data_role} on the storage account or a parent scope."
        ),
        fix=[_role_fix(identity, kind, rid)],
        evidence=evidence,
        scan=scan,
    )


async def _shared_key(target: Target, scan: str, cred: str, rid: str) -> Finding:
    props = (await target.facts.resource(rid)).get("properties") or {}
    allowed = props.get("allowSharedKeyAccess")
    evidence = {"resourceId": rid, "credential": cred, "allowSharedKeyAccess": allowed}
    name, rg = arm_name(rid), id_part(rid, "resourceGroups")
    if allowed is False:
        return META.finding(
            Status.FAIL,
            f"{name} refuses account-key access, but scan {scan} uses account-key credential {cred}",
            detail=(
                f"Storage account {rid} has allowSharedKeyAccess=false, so the account key in credential "
                f"{cred} is rejected. Allow shared-key access, or switch the scan to Purview's managed "
                "identity (and grant it Storage Blob Data Reader)."
            ),
            fix=[
                f"az storage account update --name {name} --resource-group {rg} "
                "--allow-shared-key-access true"
            ],
            evidence=evidence,
            scan=scan,
        )
    return META.finding(
        Status.PASS,
        f"{name} accepts account-key access (credential {cred})",
        detail=(
            f"allowSharedKeyAccess is {allowed if allowed is not None else 'not set (default: allowed)'}. "
            "Whether the key itself is current is checked by the Key Vault checks."
        ),
        evidence=evidence,
        scan=scan,
    )


async def _cosmos_key(target: Target, scan: str, cred: str, rid: str) -> Finding:
    props = (await target.facts.resource(rid)).get("properties") or {}
    disabled = props.get("disableLocalAuth") is True
    evidence = {"resourceId": rid, "credential": cred, "disableLocalAuth": props.get("disableLocalAuth")}
    name = arm_name(rid)
    if disabled:
        return META.finding(
            Status.FAIL,
            f"{name} has key authentication disabled, but scan {scan} uses account-key credential {cred}",
            detail=f"Cosmos DB account {rid} has disableLocalAuth=true: Purview's account key is rejected.",
            fix=[f"az resource update --ids {rid} --set properties.disableLocalAuth=false"],
            evidence=evidence,
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
        f"-- connected to {where} as the server's Entra admin:",
        f"CREATE USER [{user}] FROM EXTERNAL PROVIDER;",
        f"ALTER ROLE db_datareader ADD MEMBER [{user}];",
    ]


def _admin_of(props: Json) -> Json | None:
    admin = props.get("administrators")
    return admin if isinstance(admin, dict) and (admin.get("login") or admin.get("sid")) else None


async def _entra_admin(facts: Facts, server: str) -> tuple[Json | None, str]:
    """The server's Entra admin and where it was seen: the server's `administrators`, else the child
    resource `administrators/ActiveDirectory` (absent = no admin)."""
    props = (await facts.resource(server)).get("properties") or {}
    admin = _admin_of(props)
    if admin:
        return admin, "properties.administrators"
    child = f"{server}/administrators/ActiveDirectory"
    try:
        found = await facts.resource(child)
    except NotFoundError:
        return None, f"{child} (not found)"
    return _admin_of({"administrators": found.get("properties") or {}}), child


def _admin_fix(kind: SourceKind, server: str) -> str:
    rg, name = id_part(server, "resourceGroups"), arm_name(server)
    who_ = '--display-name "<Entra admin user or group>" --object-id <its object id>'
    if kind.resource_type.lower() == "microsoft.sql/managedinstances":
        return f"az sql mi ad-admin create --resource-group {rg} --mi {name} {who_}"
    return f"az sql server ad-admin create --resource-group {rg} --server-name {name} {who_}"


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


# --- dispatch -----------------------------------------------------------------------------------------


async def _decide(target: Target, kind: SourceKind, scan: Json, rid: str) -> Finding:
    name = str(scan.get("name", ""))
    auth = await scan_auth(target.facts, scan)
    ctype = (auth.credential_type or "").lower()
    cred = str((auth.credential or {}).get("name", ""))
    if auth.identity is not None:
        if kind.family is Family.BLOB:
            return await _blob_rbac(target, kind, name, auth.identity, rid)
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
        return await _shared_key(target, name, cred, rid)
    if ctype == "accountkey" and kind.family is Family.COSMOS:
        return await _cosmos_key(target, name, cred, rid)
    if ctype in ("sqlauth", "basicauth") and kind.family in (Family.SQL, Family.SYNAPSE):
        return META.skipped(
            f"Scan {name} signs in with SQL authentication (credential {cred})",
            "A SQL login's database user is not visible from Azure; the password in Key Vault is checked by "
            "the Key Vault checks, and a failed login shows in the scan history (error 18456).",
            scan=name,
        )
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
