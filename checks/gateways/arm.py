"""Azure Resource Manager reads: resources by id, listings, RBAC and deny policy states."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import quote

from azure.mgmt.authorization.aio import AuthorizationManagementClient

from checks.accounts import arm_name
from checks.errors import GatewayError
from checks.gateways.api import (
    BUNDLED,
    DenyAssignment,
    DenyPrincipal,
    Json,
    Permission,
    RoleAssignment,
    RoleDefinition,
)
from checks.gateways.pipeline import Call, Client, get_pages, guarded, send_json

SUBSCRIPTION = "subscription"
RESOURCE_GROUP = "resourceGroup"
API_VERSIONS: dict[str, str] = {
    SUBSCRIPTION.lower(): "2022-12-01",
    RESOURCE_GROUP.lower(): "2021-04-01",
    "microsoft.storage/storageaccounts": "2023-05-01",
    "microsoft.sql/servers": "2021-11-01",
    "microsoft.sql/servers/databases": "2021-11-01",
    # a plain server GET carries no Entra admin: it is this child (…/administrators/ActiveDirectory)
    "microsoft.sql/servers/administrators": "2021-11-01",
    # "Allow Azure services" is a firewall rule 0.0.0.0-0.0.0.0 (named AllowAllWindowsAzureIps by the portal)
    "microsoft.sql/servers/firewallrules": "2021-11-01",
    "microsoft.sql/servers/virtualnetworkrules": "2021-11-01",
    "microsoft.sql/servers/azureadonlyauthentications": "2021-11-01",
    "microsoft.sql/managedinstances": "2021-11-01",
    "microsoft.sql/managedinstances/azureadonlyauthentications": "2021-11-01",
    "microsoft.sql/managedinstances/administrators": "2021-11-01",
    "microsoft.synapse/workspaces": "2021-06-01",
    "microsoft.synapse/workspaces/firewallrules": "2021-06-01",
    "microsoft.synapse/workspaces/azureadonlyauthentications": "2021-06-01",
    "microsoft.network/privateendpoints": "2023-09-01",
    # a private endpoint's DNS zone groups (privateDnsZoneConfigs[].properties.{privateDnsZoneId,recordSets})
    "microsoft.network/privateendpoints/privatednszonegroups": "2023-09-01",
    # private DNS (specification/privatedns/…/stable/2024-06-01): zones, A record sets, virtual network links
    "microsoft.network/privatednszones": "2024-06-01",
    "microsoft.network/privatednszones/a": "2024-06-01",
    "microsoft.network/privatednszones/virtualnetworklinks": "2024-06-01",
    # a Purview account's managed Event Hubs namespace (its privateEndpointConnections, group `namespace`)
    "microsoft.eventhub/namespaces": "2024-01-01",
    "microsoft.documentdb/databaseaccounts": "2024-11-15",
    "microsoft.keyvault/vaults": "2022-07-01",
    "microsoft.purview/accounts": "2021-12-01",
}
POLICY_INSIGHTS_API = "2019-10-01"
DENY_FILTER = "complianceState eq 'NonCompliant' and policyDefinitionAction eq 'deny'"
BUILTIN_ROLE_PREFIX = "/providers/Microsoft.Authorization/roleDefinitions/"

READER = "Reader on the resource or an ancestor scope"
ROLE_ASSIGNMENTS_READ = "Microsoft.Authorization/roleAssignments/read (Reader)"
ROLE_DEFINITIONS_READ = "Microsoft.Authorization/roleDefinitions/read (Reader)"
DENY_ASSIGNMENTS_READ = "Microsoft.Authorization/denyAssignments/read (Reader)"
BUILTIN_TTL_SECONDS = 3600.0
POLICY_STATES_READ = "Microsoft.PolicyInsights/policyStates/queryResults/read (Reader)"


def resource_type(resource_id: str) -> str:
    """`Namespace/type[/childType…]` of an ARM id, or `subscription` / `resourceGroup`."""
    parts = [p for p in resource_id.split("/") if p]
    lowered = [p.lower() for p in parts]
    if "providers" in lowered:
        i = len(lowered) - 1 - lowered[::-1].index("providers")
        if i + 2 < len(parts):
            return "/".join([parts[i + 1], *parts[i + 2 :: 2]])
    elif lowered[:1] == ["subscriptions"]:
        if len(parts) == 2:
            return SUBSCRIPTION
        if len(parts) == 4 and lowered[2] == "resourcegroups":
            return RESOURCE_GROUP
    return ""


def api_version_for(type_name: str, call: str) -> str:
    """The api-version of the wire contract's table; an unlisted type is an error naming it."""
    try:
        return API_VERSIONS[type_name.lower()]
    except KeyError:
        raise GatewayError(
            call,
            code="UnsupportedResourceType",
            message=f"the bot has no api-version for resource type {type_name or '(unrecognised id)'}",
        ) from None


def _builtin_roles() -> dict[str, RoleDefinition]:
    text = resources.files("checks").joinpath("data/builtin-roles.json").read_text(encoding="utf-8")
    return {
        str(raw["id"]).lower(): _role_definition(
            BUILTIN_ROLE_PREFIX + str(raw["id"]),
            str(raw["roleName"]),
            raw.get("permissions"),
            "BuiltInRole",
            source=BUNDLED,
        )
        for raw in json.loads(text)
    }


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value or ())


def _permissions(permissions: Any) -> tuple[Permission, ...]:
    """Permission blocks from wire JSON (bundled file) or SDK models (role and deny assignments alike)."""

    def get(p: Any, wire: str, sdk: str) -> tuple[str, ...]:
        return _strings(p.get(wire) if isinstance(p, dict) else getattr(p, sdk, None))

    def condition(p: Any) -> str | None:
        value = p.get("condition") if isinstance(p, dict) else getattr(p, "condition", None)
        return str(value) if value else None

    return tuple(
        Permission(
            actions=get(p, "actions", "actions"),
            not_actions=get(p, "notActions", "not_actions"),
            data_actions=get(p, "dataActions", "data_actions"),
            not_data_actions=get(p, "notDataActions", "not_data_actions"),
            condition=condition(p),
        )
        for p in permissions or ()
    )


def _role_definition(
    id_: str, name: str, permissions: Any, role_type: str | None, *, source: str = "arm"
) -> RoleDefinition:
    return RoleDefinition(
        id=id_, role_name=name, permissions=_permissions(permissions), role_type=role_type, source=source
    )


def _principals(items: Any) -> tuple[DenyPrincipal, ...]:
    return tuple(
        DenyPrincipal(id=str(p.id), type=str(p.type) if p.type else None)
        for p in items or ()
        if getattr(p, "id", None)
    )


def _deny_assignment(da: Any) -> DenyAssignment:
    return DenyAssignment(
        id=str(da.id),
        name=str(da.deny_assignment_name or da.name or da.id),
        scope=str(da.scope or ""),
        permissions=_permissions(da.permissions),
        principals=_principals(da.principals),
        exclude_principals=_principals(da.exclude_principals),
        do_not_apply_to_child_scopes=bool(da.do_not_apply_to_child_scopes),
        is_system_protected=da.is_system_protected,
        condition=str(da.condition) if da.condition else None,
        description=str(da.description) if da.description else None,
        created_on=da.created_on if isinstance(da.created_on, datetime) else None,
    )


def _at_root(scope: str) -> bool:
    """The tenant root or a management group: ARM wants `atScope()` there (a listing below a management
    group would span subscriptions), so child-scope assignments are not asked for."""
    lowered = "/" + scope.strip().strip("/").lower()
    return lowered == "/" or lowered.startswith("/providers/microsoft.management/")


class ArmGateway:
    """`ArmApi`: generic reads on an ARM pipeline, RBAC through azure-mgmt-authorization.

    Role definitions are read from ARM: built-ins change over time (Microsoft adds data actions to them),
    so the bundled table is only the fallback when ARM refuses or fails the read. Built-ins are kept per
    gateway (per process) for `builtin_ttl` seconds; custom ones are read again by each diagnosis (its
    `Facts` asks once), so a role fixed a minute ago is judged as it is now.
    https://learn.microsoft.com/en-us/azure/role-based-access-control/built-in-roles
    """

    def __init__(
        self,
        client: Client,
        authorization: AuthorizationManagementClient,
        *,
        call_timeout: float,
        builtin_ttl: float = BUILTIN_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._auth = authorization
        self._timeout = call_timeout
        self._bundled = _builtin_roles()
        self._builtin_ttl = builtin_ttl
        self._clock = clock
        self._builtins: dict[str, tuple[float, RoleDefinition]] = {}
        """lower-case GUID → (read at, the built-in as ARM served it)."""

    async def close(self) -> None:
        await self._auth.close()  # type: ignore[no-untyped-call]
        await self._client.close()

    def _url(self, path: str) -> str:
        return self._client.format_url(quote(path, safe="/"))

    async def subscriptions(self) -> list[Json]:
        call = Call("list subscriptions", "Reader on at least one subscription")
        url = self._url("/subscriptions")
        api = API_VERSIONS[SUBSCRIPTION.lower()]
        return await guarded(call, self._timeout, lambda: get_pages(self._client, call, url, api))

    async def resource(self, resource_id: str) -> Json:
        call = Call(f"GET {resource_id}", READER)
        api = api_version_for(resource_type(resource_id), call.label)
        url = self._url(resource_id.rstrip("/"))
        params = {"api-version": api}
        return await guarded(call, self._timeout, lambda: send_json(self._client, call, "GET", url, params))

    async def list_resources(self, scope: str, resource_type: str) -> list[Json]:
        call = Call(f"list {resource_type} in {scope}", "Reader on the subscription or resource group")
        api = api_version_for(resource_type, call.label)
        url = self._url(f"{scope.rstrip('/')}/providers/{resource_type}")
        return await guarded(call, self._timeout, lambda: get_pages(self._client, call, url, api))

    async def children(self, parent_id: str, collection: str) -> list[Json]:
        path = f"{parent_id.rstrip('/')}/{collection.strip('/')}"
        call = Call(f"list {path}", READER)
        api = api_version_for(resource_type(path), call.label)
        return await guarded(call, self._timeout, lambda: get_pages(self._client, call, self._url(path), api))

    async def role_assignments(self, scope: str, principal_id: str) -> list[RoleAssignment]:
        """At, above and below the scope, direct or through groups, in one listing.

        `assignedTo('{id}')` alone lists the principal's assignments at, above and below the scope (as
        `principalId eq` does, but group-transitive); `atScope()` would cut those on child scopes (a
        container, a secret), which grant on that child only. The tenant root and management groups keep
        `atScope()`. If ARM ever refused the bare `assignedTo()` (400), the inherited view is still read.
        https://learn.microsoft.com/en-us/rest/api/authorization/role-assignments/list-for-scope
        https://learn.microsoft.com/en-us/azure/role-based-access-control/role-assignments-list-rest
        """
        call = Call(f"list role assignments of {principal_id} at {scope}", ROLE_ASSIGNMENTS_READ)
        inherited = f"atScope() and assignedTo('{principal_id}')"
        flt = inherited if _at_root(scope) else f"assignedTo('{principal_id}')"

        async def read(filter_text: str) -> list[RoleAssignment]:
            return [
                RoleAssignment(
                    id=str(ra.id),
                    scope=str(ra.scope),
                    role_definition_id=str(ra.role_definition_id),
                    principal_id=str(ra.principal_id),
                    principal_type=str(ra.principal_type) if ra.principal_type else None,
                    condition=ra.condition,
                )
                async for ra in self._auth.role_assignments.list_for_scope(scope, filter=filter_text)
            ]

        try:
            return await guarded(call, self._timeout, lambda: read(flt))
        except GatewayError as exc:
            if exc.status != 400 or flt == inherited:
                raise
        return await guarded(call, self._timeout, lambda: read(inherited))

    async def deny_assignments(self, scope: str) -> list[DenyAssignment]:
        """Deny assignments at the scope or above it (`atScope()`), for all principals: the caller
        matches principals, exclusions and permissions itself.
        https://learn.microsoft.com/en-us/rest/api/authorization/deny-assignments/list-for-scope
        """
        call = Call(f"list deny assignments at {scope}", DENY_ASSIGNMENTS_READ)

        async def read() -> list[DenyAssignment]:
            return [
                _deny_assignment(da)
                async for da in self._auth.deny_assignments.list_for_scope(scope, filter="atScope()")
            ]

        return await guarded(call, self._timeout, read)

    async def role_definition(self, definition_id: str) -> RoleDefinition:
        """ARM's definition. Built-ins are kept `builtin_ttl` seconds per gateway; when ARM refuses or
        fails the read of a built-in, the bundled table answers (`source="bundled"`)."""
        guid = arm_name(definition_id).lower()
        cached = self._builtins.get(guid)
        if cached is not None and self._clock() - cached[0] < self._builtin_ttl:
            return cached[1]
        call = Call(f"GET role definition {definition_id}", ROLE_DEFINITIONS_READ)

        async def read() -> RoleDefinition:
            rd = await self._auth.role_definitions.get_by_id(definition_id)
            return _role_definition(
                str(rd.id or definition_id), str(rd.role_name), rd.permissions, rd.role_type
            )

        try:
            found = await guarded(call, self._timeout, read)
        except GatewayError:
            bundled = self._bundled.get(guid)
            if bundled is None:
                raise
            return bundled
        if guid in self._bundled or str(found.role_type or "").lower() == "builtinrole":
            self._builtins[guid] = (self._clock(), found)
        return found

    async def deny_policy_states(self, resource_id: str) -> list[Json]:
        call = Call(f"query deny policy states of {resource_id}", POLICY_STATES_READ)
        path = (
            f"{resource_id.rstrip('/')}/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults"
        )
        url = self._url(path)
        return await guarded(
            call,
            self._timeout,
            lambda: get_pages(
                self._client,
                call,
                url,
                POLICY_INSIGHTS_API,
                method="POST",
                params={"$filter": DENY_FILTER},
                next_key="@odata.nextLink",
            ),
        )
