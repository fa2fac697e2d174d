"""Azure Resource Manager reads: resources by id, listings, RBAC and deny policy states."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any
from urllib.parse import quote

from azure.mgmt.authorization.aio import AuthorizationManagementClient

from checks.accounts import arm_name
from checks.errors import GatewayError
from checks.gateways.api import Json, Permission, RoleAssignment, RoleDefinition
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
            BUILTIN_ROLE_PREFIX + str(raw["id"]), str(raw["roleName"]), raw.get("permissions"), "BuiltInRole"
        )
        for raw in json.loads(text)
    }


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value or ())


def _role_definition(id_: str, name: str, permissions: Any, role_type: str | None) -> RoleDefinition:
    def get(p: Any, wire: str, sdk: str) -> tuple[str, ...]:
        return _strings(p.get(wire) if isinstance(p, dict) else getattr(p, sdk, None))

    perms = tuple(
        Permission(
            actions=get(p, "actions", "actions"),
            not_actions=get(p, "notActions", "not_actions"),
            data_actions=get(p, "dataActions", "data_actions"),
            not_data_actions=get(p, "notDataActions", "not_data_actions"),
        )
        for p in permissions or ()
    )
    return RoleDefinition(id=id_, role_name=name, permissions=perms, role_type=role_type)


class ArmGateway:
    """`ArmApi`: generic reads on an ARM pipeline, RBAC through azure-mgmt-authorization.

    Built-in role definitions are bundled (they never change); custom ones are read again by each
    diagnosis (its `Facts` asks once), so a role fixed a minute ago is judged as it is now.
    """

    def __init__(
        self, client: Client, authorization: AuthorizationManagementClient, *, call_timeout: float
    ) -> None:
        self._client = client
        self._auth = authorization
        self._timeout = call_timeout
        self._builtins = _builtin_roles()

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
        call = Call(f"list role assignments of {principal_id} at {scope}", ROLE_ASSIGNMENTS_READ)
        flt = f"atScope() and assignedTo('{principal_id}')"

        async def read() -> list[RoleAssignment]:
            return [
                RoleAssignment(
                    id=str(ra.id),
                    scope=str(ra.scope),
                    role_definition_id=str(ra.role_definition_id),
                    principal_id=str(ra.principal_id),
                    principal_type=str(ra.principal_type) if ra.principal_type else None,
                    condition=ra.condition,
                )
                async for ra in self._auth.role_assignments.list_for_scope(scope, filter=flt)
            ]

        return await guarded(call, self._timeout, read)

    async def role_definition(self, definition_id: str) -> RoleDefinition:
        """A built-in from the bundled file (never fetched), else ARM's."""
        guid = arm_name(definition_id).lower()
        if found := self._builtins.get(guid):
            return found
        call = Call(f"GET role definition {definition_id}", ROLE_DEFINITIONS_READ)

        async def read() -> RoleDefinition:
            rd = await self._auth.role_definitions.get_by_id(definition_id)
            return _role_definition(
                str(rd.id or definition_id), str(rd.role_name), rd.permissions, rd.role_type
            )

        return await guarded(call, self._timeout, read)

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
