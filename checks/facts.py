"""The shared, memoised facts of one diagnosis: every check reads Azure only through this object."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from checks.accounts import AccountRef, arm_name
from checks.errors import GatewayError, NotFoundError
from checks.gateways.api import (
    ArmApi,
    DenyAssignment,
    GraphApi,
    Json,
    KeyVaultApi,
    PurviewApi,
    RoleAssignment,
    RoleDefinition,
    SecretVersion,
    scope_at_or_above,
    scope_below,
)
from checks.gateways.monitor import ActivityLogQuery, MonitorApi
from checks.memo import Memo

PURVIEW_ACCOUNT_TYPE = "Microsoft.Purview/accounts"
KEY_VAULT_TYPE = "Microsoft.KeyVault/vaults"


def normalise_url(url: str) -> str:
    return url.strip().lower().rstrip("/")


@dataclass(frozen=True)
class Gateways:
    purview: PurviewApi
    arm: ArmApi
    keyvault: KeyVaultApi
    graph: GraphApi
    monitor: MonitorApi | None = None
    """The Activity Log (what changed); None where a caller wires no monitor reads."""


class Facts:
    """Memoised reads for one diagnosis of one Purview account.

    `account_ref` is the account's name or its ARM id (as in `PURVIEW_ACCOUNTS`).
    """

    def __init__(self, gateways: Gateways, account_ref: str) -> None:
        self._g = gateways
        self.account_ref = account_ref
        self.account_name = AccountRef(account_ref).name
        self._memo = Memo()

    def close(self) -> None:
        """Cancel lookups nobody waits for any more (after the deadline)."""
        self._memo.cancel()

    # --- Purview scanning data plane -------------------------------------------------------------
    async def data_sources(self) -> list[Json]:
        return await self._memo.get(("data_sources",), self._g.purview.data_sources)

    async def data_source(self, name: str) -> Json:
        return await self._memo.get(("data_source", name), lambda: self._g.purview.data_source(name))

    async def scans(self, data_source: str) -> list[Json]:
        return await self._memo.get(("scans", data_source), lambda: self._g.purview.scans(data_source))

    async def runs(self, data_source: str, scan: str) -> list[Json]:
        return await self._memo.get(
            ("runs", data_source, scan), lambda: self._g.purview.runs(data_source, scan)
        )

    async def credential(self, name: str) -> Json:
        return await self._memo.get(("credential", name), lambda: self._g.purview.credential(name))

    async def key_vault_connection(self, name: str) -> Json:
        return await self._memo.get(
            ("kv_connection", name), lambda: self._g.purview.key_vault_connection(name)
        )

    async def integration_runtime(self, name: str) -> Json:
        return await self._memo.get(("ir", name), lambda: self._g.purview.integration_runtime(name))

    async def integration_runtime_status(self, name: str) -> Json:
        return await self._memo.get(
            ("ir_status", name), lambda: self._g.purview.integration_runtime_status(name)
        )

    async def managed_private_endpoints(self, vnet: str) -> list[Json]:
        return await self._memo.get(("mpe", vnet), lambda: self._g.purview.managed_private_endpoints(vnet))

    async def scan_trigger(self, data_source: str, scan: str) -> Json:
        """The scan's schedule (`triggers/default`); NotFoundError when the scan has none."""
        key = ("trigger", data_source.lower(), scan.lower())
        return await self._memo.get(key, lambda: self._g.purview.scan_trigger(data_source, scan))

    async def collections(self) -> list[Json]:
        """The account's collection tree (one listing per diagnosis, shared by every scan)."""
        return await self._memo.get(("collections",), self._g.purview.collections)

    # --- ARM ------------------------------------------------------------------------------------
    async def subscriptions(self) -> list[Json]:
        return await self._memo.get(("subscriptions",), self._g.arm.subscriptions)

    async def resource(self, resource_id: str) -> Json:
        key = ("resource", resource_id.lower().rstrip("/"))
        return await self._memo.get(key, lambda: self._g.arm.resource(resource_id))

    async def list_resources(self, scope: str, resource_type: str) -> list[Json]:
        key = ("list", scope.lower().rstrip("/"), resource_type.lower())
        return await self._memo.get(key, lambda: self._g.arm.list_resources(scope, resource_type))

    async def children(self, parent_id: str, collection: str) -> list[Json]:
        """A resource's child collection, e.g. a SQL server's `firewallRules`."""
        key = ("children", parent_id.lower().rstrip("/"), collection.lower().strip("/"))
        return await self._memo.get(key, lambda: self._g.arm.children(parent_id, collection))

    async def role_assignments(self, scope: str, principal_id: str) -> list[RoleAssignment]:
        """The principal's assignments (direct or through groups) at the scope or above it."""
        found = await self._role_assignments_around(scope, principal_id)
        return [a for a in found if scope_at_or_above(a.scope, scope)]

    async def role_assignments_below(self, scope: str, principal_id: str) -> list[RoleAssignment]:
        """The principal's assignments on child scopes of `scope` (a container, a secret): same read."""
        found = await self._role_assignments_around(scope, principal_id)
        return [a for a in found if scope_below(a.scope, scope)]

    async def _role_assignments_around(self, scope: str, principal_id: str) -> list[RoleAssignment]:
        """One listing per (scope, principal): at, above and below the scope."""
        key = ("role_assignments", scope.lower().rstrip("/"), principal_id.lower())
        return await self._memo.get(key, lambda: self._g.arm.role_assignments(scope, principal_id))

    async def deny_assignments(self, scope: str) -> list[DenyAssignment]:
        """Deny assignments at the scope or above it, for every principal (one read per scope)."""
        key = ("deny_assignments", scope.lower().rstrip("/"))
        return await self._memo.get(key, lambda: self._g.arm.deny_assignments(scope))

    async def role_definition(self, definition_id: str) -> RoleDefinition:
        key = ("role_definition", arm_name(definition_id).lower())
        return await self._memo.get(key, lambda: self._g.arm.role_definition(definition_id))

    async def deny_policy_states(self, resource_id: str) -> list[Json]:
        key = ("policy_states", resource_id.lower())
        return await self._memo.get(key, lambda: self._g.arm.deny_policy_states(resource_id))

    async def account(self) -> Json:
        """The Purview account's ARM resource (identity, managed resources), found by id or by name."""
        return await self._memo.get(("account",), self._find_account)

    async def _find_account(self) -> Json:
        if self.account_ref.startswith("/"):
            return await self.resource(self.account_ref)
        accounts, errors = await self._across_subscriptions(PURVIEW_ACCOUNT_TYPE)
        for acct in accounts:
            if str(acct.get("name", "")).lower() == self.account_name.lower():
                return acct
        if errors:  # it may be in the subscription that did not answer: say so, not "not found"
            raise errors[0]
        raise NotFoundError(
            f"find Purview account {self.account_name} in ARM",
            status=404,
            code="ResourceNotFound",
            message="no Microsoft.Purview/accounts of that name in any subscription the bot can read",
            permission="Reader on the Purview account's subscription or resource group",
        )

    async def vault_by_uri(self, vault_uri: str) -> Json | None:
        """A Key Vault's ARM resource, matched on `properties.vaultUri` (never on a parsed host name).

        None only when every subscription answered; a subscription that did not raises its error.
        """
        wanted = normalise_url(vault_uri)
        vaults, errors = await self._vault_listing()
        for vault in vaults:
            if normalise_url(str(vault.get("properties", {}).get("vaultUri", ""))) == wanted:
                return vault
        if errors:
            raise errors[0]
        return None

    async def prefetch_vaults(self) -> None:
        """Start listing the vaults early, beside the credential reads that will need them."""
        await self._vault_listing()

    async def _vault_listing(self) -> tuple[list[Json], list[GatewayError]]:
        return await self._memo.get(("vaults",), lambda: self._across_subscriptions(KEY_VAULT_TYPE))

    async def _across_subscriptions(self, resource_type: str) -> tuple[list[Json], list[GatewayError]]:
        """Resources of a type in every subscription the bot can read, listed concurrently, with the
        errors of the subscriptions that did not answer (the caller decides what a miss then means)."""
        subs = await self.subscriptions()
        pages = await asyncio.gather(
            *(self.list_resources(f"/subscriptions/{s['subscriptionId']}", resource_type) for s in subs),
            return_exceptions=True,
        )
        found: list[Json] = []
        errors: list[GatewayError] = []
        for page in pages:
            if isinstance(page, GatewayError):
                errors.append(page)
            elif isinstance(page, BaseException):
                raise page
            else:
                found.extend(page)
        return found, errors

    async def activity_log(self, query: ActivityLogQuery) -> list[Json]:
        """Activity Log events of one query (subscription, time range, one filter): one read each."""
        monitor = self._g.monitor
        if monitor is None:
            raise GatewayError(query.label(), code="NotConfigured", message="no Activity Log reader is wired")
        return await self._memo.get(("activity_log", *query.key), lambda: monitor.activity_log(query))

    async def resource_changes(self, resource_id: str) -> list[Json]:
        """The resource's property changes of the last 14 days (`Microsoft.Resources/changes`)."""
        monitor = self._g.monitor
        if monitor is None:
            raise GatewayError(f"read the property changes of {resource_id}", code="NotConfigured")
        key = ("resource_changes", resource_id.lower().rstrip("/"))
        return await self._memo.get(key, lambda: monitor.resource_changes(resource_id))

    # --- Key Vault and Graph ----------------------------------------------------------------------
    async def secret_versions(self, vault_url: str, name: str) -> list[SecretVersion]:
        key = ("secret_versions", normalise_url(vault_url), name.lower())
        return await self._memo.get(key, lambda: self._g.keyvault.secret_versions(vault_url, name))

    async def deleted_secret(self, vault_url: str, name: str) -> Json | None:
        """The soft-deleted secret of that name (properties only), None when the vault has none.

        One listing per vault, however many secrets are looked up; raises GatewayError when unreadable.
        """
        key = ("deleted_secrets", normalise_url(vault_url))
        deleted = await self._memo.get(key, lambda: self._g.keyvault.deleted_secrets(vault_url))
        return next((d for d in deleted if str(d.get("name", "")).lower() == name.lower()), None)

    async def service_principal_by_app_id(self, app_id: str) -> Json | None:
        key = ("graph_sp", app_id.lower())
        return await self._memo.get(key, lambda: self._g.graph.service_principal_by_app_id(app_id))

    async def application_by_app_id(self, app_id: str) -> Json | None:
        """The app registration of an app id with its credentials' end dates (one read per app id)."""
        key = ("graph_application", app_id.lower())
        return await self._memo.get(key, lambda: self._g.graph.application_by_app_id(app_id))

    async def user_by_upn(self, upn: str) -> Json | None:
        return await self._memo.get(("graph_user", upn.lower()), lambda: self._g.graph.user_by_upn(upn))

    async def transitive_group_ids(self, object_id: str) -> frozenset[str]:
        """Lower-case ids of every group the object (service principal, user, group) is in, transitively:
        e.g. to honour a Key Vault access policy or a deny assignment naming a group. Raises GatewayError
        (NotFoundError for an unknown object) when Graph gives no answer: the caller says `unknown`."""
        key = ("graph_groups", object_id.lower())
        return await self._memo.get(key, lambda: self._g.graph.transitive_group_ids(object_id))
