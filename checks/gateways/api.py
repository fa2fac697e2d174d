"""What the diagnosis reads, as protocols: the checks depend on these, not on the SDKs.

Purview and ARM documents are returned as Azure's own wire JSON (dicts), so a check reads the same field
names as the REST reference. RBAC and Key Vault data are small typed records. Every method raises
`checks.errors.GatewayError` (or `NotFoundError`) when the call gives no answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from checks.accounts import arm_name

Json = dict[str, Any]


@dataclass(frozen=True)
class RoleAssignment:
    id: str
    scope: str
    role_definition_id: str
    principal_id: str
    principal_type: str | None = None
    condition: str | None = None

    @property
    def role_guid(self) -> str:
        """Built-in ids come both with and without a subscription prefix: the trailing GUID decides."""
        return arm_name(self.role_definition_id).lower()


@dataclass(frozen=True)
class Permission:
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()
    condition: str | None = None
    """Deny assignments' permission blocks may carry an ABAC condition (role definitions' do not here)."""


ARM = "arm"
BUNDLED = "bundled"


@dataclass(frozen=True)
class RoleDefinition:
    id: str
    role_name: str
    permissions: tuple[Permission, ...]
    role_type: str | None = None
    source: str = ARM
    """`arm` (read from ARM) or `bundled` (the packaged built-in table, when ARM could not be read)."""

    @property
    def guid(self) -> str:
        return arm_name(self.id).lower()


EVERYONE = "00000000-0000-0000-0000-000000000000"
"""A deny assignment's principal with this id (type `SystemDefined`) stands for all principals."""


@dataclass(frozen=True)
class DenyPrincipal:
    id: str
    type: str | None = None


@dataclass(frozen=True)
class DenyAssignment:
    """A `Microsoft.Authorization/denyAssignments` entry (set by Azure: managed applications, Blueprints,
    deployment stacks): its permissions are *denied* to its principals, whatever role grants them."""

    id: str
    name: str  # denyAssignmentName, the display name
    scope: str
    permissions: tuple[Permission, ...]
    principals: tuple[DenyPrincipal, ...]
    exclude_principals: tuple[DenyPrincipal, ...] = ()
    do_not_apply_to_child_scopes: bool = False
    is_system_protected: bool | None = None
    condition: str | None = None
    description: str | None = None
    created_on: datetime | None = None


@dataclass(frozen=True)
class SecretVersion:
    """The properties of one version of a Key Vault secret: never its value."""

    id: str
    version: str
    enabled: bool | None
    created: datetime | None = None
    updated: datetime | None = None
    expires: datetime | None = None
    not_before: datetime | None = None


class PurviewApi(Protocol):
    """Purview's scanning data plane for one account (api-version 2023-09-01).

    `data_sources()` keeps a data source's `scans` array when the service sends one (the watcher then
    need not list the scans of each source).
    """

    async def data_sources(self) -> list[Json]: ...
    async def data_source(self, name: str) -> Json: ...
    async def scans(self, data_source: str) -> list[Json]: ...
    async def runs(self, data_source: str, scan: str) -> list[Json]: ...
    async def latest_runs(self, data_source: str, scan: str) -> list[Json]:
        """The first page of runs only, newest first: what a poller needs, at one request per scan."""
        ...

    async def credential(self, name: str) -> Json: ...
    async def key_vault_connection(self, name: str) -> Json: ...
    async def integration_runtime(self, name: str) -> Json: ...
    async def integration_runtime_status(self, name: str) -> Json: ...
    async def managed_private_endpoints(self, vnet: str) -> list[Json]: ...
    async def scan_trigger(self, data_source: str, scan: str) -> Json:
        """`GET …/scans/{scan}/triggers/default`: the scan's schedule; `NotFoundError` when it has none."""
        ...

    async def collections(self) -> list[Json]:
        """The account's collections (account data plane, `GET {account}/account/collections`), every page:
        `name`, `friendlyName`, `parentCollection.referenceName`."""
        ...


class ArmApi(Protocol):
    """Azure Resource Manager reads."""

    async def subscriptions(self) -> list[Json]: ...
    async def resource(self, resource_id: str) -> Json: ...
    async def list_resources(self, scope: str, resource_type: str) -> list[Json]:
        """Resources of one type (`Microsoft.Sql/servers`) in a subscription or resource group scope."""
        ...

    async def children(self, parent_id: str, collection: str) -> list[Json]:
        """A resource's child collection (`…/servers/S` + `firewallRules`), every page."""
        ...

    async def role_assignments(self, scope: str, principal_id: str) -> list[RoleAssignment]:
        """`assignedTo(principal)`: the principal's assignments, direct or through groups, at the scope,
        above it (inherited) *and below it* (child scopes); callers split them by scope."""
        ...

    async def role_definition(self, definition_id: str) -> RoleDefinition:
        """ARM's definition; a built-in from the bundled table (`source="bundled"`) when ARM refuses."""
        ...

    async def deny_assignments(self, scope: str) -> list[DenyAssignment]:
        """`atScope()`: deny assignments at the scope or above it, for every principal."""
        ...

    async def deny_policy_states(self, resource_id: str) -> list[Json]:
        """Latest Policy Insights states of the resource that are NonCompliant with a `deny` effect."""
        ...


def _norm_scope(scope: str) -> str:
    return "/" + scope.strip().strip("/").lower()


_MANAGEMENT_GROUP_PREFIX = "/providers/microsoft.management/managementgroups/"


def scope_at_or_above(candidate: str, target: str) -> bool:
    """`candidate` is the target scope or an ancestor of it (path prefix on segment boundaries).

    Management-group and root scopes are ancestors ARM's filters already vetted; their hierarchy is not
    visible in a resource id, so they are trusted as returned.
    """
    a, t = _norm_scope(candidate), _norm_scope(target)
    if a == "/" or a.startswith(_MANAGEMENT_GROUP_PREFIX):
        return True
    return t == a or t.startswith(a + "/")


def scope_below(candidate: str, target: str) -> bool:
    """`candidate` is strictly inside the target scope (a child resource: a container, a secret)."""
    a, t = _norm_scope(candidate), _norm_scope(target)
    return a != t and (t == "/" or a.startswith(t + "/"))


class KeyVaultApi(Protocol):
    async def secret_versions(self, vault_url: str, name: str) -> list[SecretVersion]:
        """Properties of every version of a secret (needs secrets/list); never a value."""
        ...

    async def deleted_secrets(self, vault_url: str) -> list[Json]:
        """`GET {vault}/deletedsecrets` (secrets/list), every page: name, deletedDate, scheduledPurgeDate;
        never a value."""
        ...


class GraphApi(Protocol):
    async def service_principal_by_app_id(self, app_id: str) -> Json | None: ...
    async def user_by_upn(self, upn: str) -> Json | None: ...
    async def application_by_app_id(self, app_id: str) -> Json | None:
        """The app registration (Graph `application`) with its credentials' metadata (`passwordCredentials`,
        `keyCredentials`: keyId, displayName, startDateTime, endDateTime; never a secret); None when the
        tenant has no app registration with that app id (a multi-tenant app registered elsewhere)."""
        ...

    async def transitive_group_ids(self, object_id: str) -> frozenset[str]:
        """Lower-case ids of the groups a service principal, user or group is in, directly or nested.

        `NotFoundError` when Graph has no such object; `GatewayError` naming the permission when refused.
        """
        ...
