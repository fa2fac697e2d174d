"""In-memory gateways for unit tests of the checks, fed with the sandbox's world format (dicts).

They implement the same protocols as the real gateways (checks/gateways/api.py) and count calls, so a
unit test can assert both a decision and that a lookup was made once.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from checks.errors import GatewayError, NotFoundError
from checks.facts import Facts, Gateways
from checks.gateways.api import (
    DenyAssignment,
    DenyPrincipal,
    Json,
    Permission,
    RoleAssignment,
    RoleDefinition,
    SecretVersion,
)
from checks.target import Target

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def _ancestors(scope: str) -> set[str]:
    """A scope and every parent scope, lower case: `/`, `/subscriptions/s`, `…/resourcegroups/rg`…"""
    parts = scope.strip("/").lower().split("/")
    return {"/"} | {"/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)}


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


class FakeWorld:
    """All four gateways over one world dict; `fail` maps a call label prefix to an error to raise."""

    def __init__(self, world: dict[str, Any], account: str | None = None) -> None:
        self.world = world
        self.account = account or next(iter(world.get("purview", {"pv": {}})))
        self.calls: Counter[str] = Counter()
        self.fail: dict[str, GatewayError] = {}
        builtins = json.loads((resources.files("checks") / "data" / "builtin-roles.json").read_text())
        self.role_defs: dict[str, RoleDefinition] = {}
        for r in builtins:
            self.role_defs[r["id"].lower()] = RoleDefinition(
                id=f"/providers/Microsoft.Authorization/roleDefinitions/{r['id']}",
                role_name=r["roleName"],
                role_type="BuiltInRole",
                permissions=tuple(_perm(p) for p in r["permissions"]),
            )
        for d in world.get("roleDefinitions", []):
            props = d["properties"]
            rd = RoleDefinition(
                id=d["id"],
                role_name=props["roleName"],
                role_type=props.get("type", "CustomRole"),
                permissions=tuple(_perm(p) for p in props["permissions"]),
            )
            self.role_defs[rd.guid] = rd

    # helpers ------------------------------------------------------------------------------------
    def _call(self, label: str) -> None:
        self.calls[label] += 1
        for prefix, err in self.fail.items():
            if label.startswith(prefix):
                raise err

    @property
    def _pv(self) -> dict[str, Any]:
        return dict(self.world.get("purview", {}).get(self.account, {}))

    def gateways(self) -> Gateways:
        return Gateways(purview=self, arm=self, keyvault=self, graph=self)  # type: ignore[arg-type]

    def facts(self, account_ref: str | None = None) -> Facts:
        return Facts(self.gateways(), account_ref or self.account)

    async def target(self, source: str, *, now: datetime = NOW, requester_upn: str | None = None) -> Target:
        facts = self.facts()
        return Target(
            facts=facts,
            source=await facts.data_source(source),
            scans=await facts.scans(source),
            now=now,
            requester_upn=requester_upn,
        )

    # PurviewApi ---------------------------------------------------------------------------------
    async def data_sources(self) -> list[Json]:
        self._call("purview.data_sources")
        return list(self._pv.get("dataSources", []))

    async def data_source(self, name: str) -> Json:
        self._call(f"purview.data_source:{name}")
        for ds in self._pv.get("dataSources", []):
            if ds["name"] == name:
                return dict(ds)
        raise NotFoundError(f"GET Purview data source {name}", status=404, code="NotFound")

    async def scans(self, data_source: str) -> list[Json]:
        self._call(f"purview.scans:{data_source}")
        return list(self._pv.get("scans", {}).get(data_source, []))

    async def runs(self, data_source: str, scan: str) -> list[Json]:
        self._call(f"purview.runs:{data_source}/{scan}")
        return list(self._pv.get("runs", {}).get(f"{data_source}/{scan}", []))

    def _named(self, key: str, name: str, label: str) -> Json:
        self._call(f"purview.{label}:{name}")
        for item in self._pv.get(key, []):
            if item["name"] == name:
                return dict(item)
        raise NotFoundError(f"GET Purview {label} {name}", status=404, code="NotFound")

    async def credential(self, name: str) -> Json:
        return self._named("credentials", name, "credential")

    async def key_vault_connection(self, name: str) -> Json:
        return self._named("azureKeyVaults", name, "kv_connection")

    async def integration_runtime(self, name: str) -> Json:
        return self._named("integrationRuntimes", name, "ir")

    async def integration_runtime_status(self, name: str) -> Json:
        self._call(f"purview.ir_status:{name}")
        status = self._pv.get("integrationRuntimeStatus", {}).get(name)
        if status is None:
            raise NotFoundError(f"GET Purview integration runtime status {name}", status=404, code="NotFound")
        return dict(status)

    async def managed_private_endpoints(self, vnet: str) -> list[Json]:
        self._call(f"purview.mpe:{vnet}")
        return list(self._pv.get("managedPrivateEndpoints", {}).get(vnet, []))

    async def scan_trigger(self, data_source: str, scan: str) -> Json:
        """The world's `purview.ACCOUNT.triggers["DATASOURCE/SCAN"]`; Purview's 404 when it has none."""
        self._call(f"purview.trigger:{data_source}/{scan}")
        trigger = self._pv.get("triggers", {}).get(f"{data_source}/{scan}")
        if trigger is None:
            raise NotFoundError(f"GET Purview schedule of {data_source}/{scan}", status=404, code="NotFound")
        return dict(trigger)

    async def collections(self) -> list[Json]:
        self._call("purview.collections")
        return list(self._pv.get("collections", []))

    # ArmApi -------------------------------------------------------------------------------------
    async def subscriptions(self) -> list[Json]:
        self._call("arm.subscriptions")
        return [
            dict(s, id=f"/subscriptions/{s['subscriptionId']}") for s in self.world.get("subscriptions", [])
        ]

    async def resource(self, resource_id: str) -> Json:
        self._call(f"arm.resource:{resource_id.lower()}")
        for r in self.world.get("resources", []):
            if r["id"].lower() == resource_id.lower():
                return dict(r)
        raise NotFoundError(f"GET {resource_id}", status=404, code="ResourceNotFound")

    async def list_resources(self, scope: str, resource_type: str) -> list[Json]:
        self._call(f"arm.list:{scope.lower()}:{resource_type.lower()}")
        prefix = scope.lower().rstrip("/") + "/"
        return [
            dict(r)
            for r in self.world.get("resources", [])
            if r["id"].lower().startswith(prefix) and r.get("type", "").lower() == resource_type.lower()
        ]

    async def children(self, parent_id: str, collection: str) -> list[Json]:
        self._call(f"arm.children:{parent_id.lower()}:{collection.lower()}")
        prefix = f"{parent_id.lower().rstrip('/')}/{collection.lower().strip('/')}/"
        found = [dict(r) for r in self.world.get("resources", []) if r["id"].lower().startswith(prefix)]
        return [r for r in found if "/" not in r["id"].lower()[len(prefix) :]]

    def _groups_of(self, principal_id: str) -> set[str]:
        by_id = {p["id"].lower(): p for p in self.world.get("principals", [])}
        seen: set[str] = set()
        todo = [principal_id.lower()]
        while todo:
            pid = todo.pop()
            for g in by_id.get(pid, {}).get("memberOf", []):
                if g.lower() not in seen:
                    seen.add(g.lower())
                    todo.append(g.lower())
        return seen

    async def role_assignments(self, scope: str, principal_id: str) -> list[RoleAssignment]:
        """As ARM's `assignedTo()`: direct or through groups, at, above and below the scope."""
        self._call(f"arm.role_assignments:{scope.lower()}:{principal_id.lower()}")
        ancestors = _ancestors(scope)
        below = scope.lower().rstrip("/") + "/"
        ids = {principal_id.lower()} | self._groups_of(principal_id)
        out = []
        for a in self.world.get("roleAssignments", []):
            p = a["properties"]
            where = p["scope"].lower().rstrip("/") or "/"
            if p["principalId"].lower() in ids and (where in ancestors or where.startswith(below)):
                out.append(
                    RoleAssignment(
                        id=a["id"],
                        scope=p["scope"],
                        role_definition_id=p["roleDefinitionId"],
                        principal_id=p["principalId"],
                        principal_type=p.get("principalType"),
                        condition=p.get("condition"),
                    )
                )
        return out

    async def deny_assignments(self, scope: str) -> list[DenyAssignment]:
        """As ARM's `atScope()`: the world's `denyAssignments` at the scope or above it."""
        self._call(f"arm.deny_assignments:{scope.lower().rstrip('/')}")
        ancestors = _ancestors(scope)
        out = []
        for d in self.world.get("denyAssignments", []):
            p = d["properties"]
            if (p["scope"].lower().rstrip("/") or "/") in ancestors:
                out.append(
                    DenyAssignment(
                        id=d["id"],
                        name=p.get("denyAssignmentName") or d["name"],
                        scope=p["scope"],
                        permissions=tuple(_perm(x) for x in p.get("permissions", [])),
                        principals=tuple(_principal(x) for x in p.get("principals", [])),
                        exclude_principals=tuple(_principal(x) for x in p.get("excludePrincipals", [])),
                        do_not_apply_to_child_scopes=bool(p.get("doNotApplyToChildScopes")),
                        is_system_protected=p.get("isSystemProtected"),
                        condition=p.get("condition"),
                        description=p.get("description"),
                        created_on=_when(p.get("createdOn")),
                    )
                )
        return out

    async def role_definition(self, definition_id: str) -> RoleDefinition:
        guid = definition_id.rstrip("/").rsplit("/", 1)[-1].lower()
        self._call(f"arm.role_definition:{guid}")
        if guid not in self.role_defs:
            raise NotFoundError(f"GET role definition {guid}", status=404, code="RoleDefinitionDoesNotExist")
        return self.role_defs[guid]

    async def deny_policy_states(self, resource_id: str) -> list[Json]:
        self._call(f"arm.policy_states:{resource_id.lower()}")
        return [
            dict(s)
            for s in self.world.get("policyStates", [])
            if s["resourceId"].lower() == resource_id.lower()
            and str(s.get("complianceState", "")).lower() == "noncompliant"
            and str(s.get("policyDefinitionAction", "")).lower() == "deny"
        ]

    # KeyVaultApi --------------------------------------------------------------------------------
    async def secret_versions(self, vault_url: str, name: str) -> list[SecretVersion]:
        self._call(f"kv.versions:{vault_url.lower().rstrip('/')}:{name}")
        vault = vault_url.split("//", 1)[-1].split(".", 1)[0].split("/")[0]
        secrets = self.world.get("keyVaults", {}).get(vault, {}).get("secrets", {})
        if name not in secrets or _soft_deleted(secrets[name]):
            raise NotFoundError(f"list versions of secret {name}", status=404, code="SecretNotFound")
        out = []
        for v in secrets[name]:
            a = v.get("attributes", {})
            out.append(
                SecretVersion(
                    id=f"https://{vault}.vault.azure.net/secrets/{name}/{v['version']}",
                    version=v["version"],
                    enabled=a.get("enabled"),
                    created=_when(a.get("created")),
                    updated=_when(a.get("updated")),
                    expires=_when(a.get("exp")),
                    not_before=_when(a.get("nbf")),
                )
            )
        return out

    async def deleted_secrets(self, vault_url: str) -> list[Json]:
        """A secret whose versions all carry `deletedDate` is soft-deleted (the sandbox's world format)."""
        self._call(f"kv.deleted:{vault_url.lower().rstrip('/')}")
        vault = vault_url.split("//", 1)[-1].split(".", 1)[0].split("/")[0]
        secrets = self.world.get("keyVaults", {}).get(vault, {}).get("secrets", {})
        out = []
        for name, versions in secrets.items():
            if _soft_deleted(versions):
                deleted = max(_when(v["deletedDate"]) or NOW for v in versions)
                out.append(
                    {
                        "name": name,
                        "recoveryId": f"https://{vault}.vault.azure.net/deletedsecrets/{name}",
                        "deletedDate": deleted.isoformat().replace("+00:00", "Z"),
                        "scheduledPurgeDate": None,
                    }
                )
        return out

    # GraphApi -----------------------------------------------------------------------------------
    async def service_principal_by_app_id(self, app_id: str) -> Json | None:
        self._call(f"graph.sp:{app_id}")
        for p in self.world.get("principals", []):
            if p.get("appId", "").lower() == app_id.lower():
                return {"id": p["id"], "appId": p["appId"], "displayName": p.get("displayName")}
        return None

    async def application_by_app_id(self, app_id: str) -> Json | None:
        """An app registration for a service principal of type Application (as the sandbox serves it)."""
        self._call(f"graph.application:{app_id}")
        for p in self.world.get("principals", []):
            sp_type = p.get("servicePrincipalType") or "Application"
            if p.get("appId", "").lower() == app_id.lower() and sp_type == "Application":
                return {
                    "id": f"app-{p['id']}",
                    "appId": p["appId"],
                    "displayName": p.get("displayName"),
                    "passwordCredentials": list(p.get("passwordCredentials", [])),
                    "keyCredentials": list(p.get("keyCredentials", [])),
                }
        return None

    async def user_by_upn(self, upn: str) -> Json | None:
        self._call(f"graph.user:{upn}")
        for p in self.world.get("principals", []):
            if p.get("userPrincipalName", "").lower() == upn.lower():
                return {"id": p["id"], "displayName": p.get("displayName"), "userPrincipalName": upn}
        return None

    async def transitive_group_ids(self, object_id: str) -> frozenset[str]:
        """The world's `principals[].memberOf`, transitively; an id no principal has is Graph's 404."""
        self._call(f"graph.groups:{object_id.lower()}")
        if not any(p["id"].lower() == object_id.lower() for p in self.world.get("principals", [])):
            raise NotFoundError(
                f"list the groups of {object_id} in Microsoft Graph",
                status=404,
                code="Request_ResourceNotFound",
            )
        return frozenset(self._groups_of(object_id))


def _soft_deleted(versions: list[Json]) -> bool:
    return bool(versions) and all(v.get("deletedDate") for v in versions)


def _perm(p: dict[str, Any]) -> Permission:
    return Permission(
        actions=tuple(p.get("actions", [])),
        not_actions=tuple(p.get("notActions", [])),
        data_actions=tuple(p.get("dataActions", [])),
        not_data_actions=tuple(p.get("notDataActions", [])),
        condition=p.get("condition"),
    )


def _principal(p: dict[str, Any]) -> DenyPrincipal:
    return DenyPrincipal(id=p["id"], type=p.get("type"))
