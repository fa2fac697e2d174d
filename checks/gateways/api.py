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


@dataclass(frozen=True)
class RoleDefinition:
    id: str
    role_name: str
    permissions: tuple[Permission, ...]
    role_type: str | None = None

    @property
    def guid(self) -> str:
        return arm_name(self.id).lower()


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
        """`atScope() and assignedTo(principal)`: at the scope or above, direct or through groups."""
        ...

    async def role_definition(self, definition_id: str) -> RoleDefinition: ...
    async def deny_policy_states(self, resource_id: str) -> list[Json]:
        """Latest Policy Insights states of the resource that are NonCompliant with a `deny` effect."""
        ...


class KeyVaultApi(Protocol):
    async def secret_versions(self, vault_url: str, name: str) -> list[SecretVersion]:
        """Properties of every version of a secret (needs secrets/list); never a value."""
        ...


class GraphApi(Protocol):
    async def service_principal_by_app_id(self, app_id: str) -> Json | None: ...
    async def user_by_upn(self, upn: str) -> Json | None: ...
