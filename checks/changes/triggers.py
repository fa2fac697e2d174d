"""Which failing checks a change can explain: it removed or narrowed what that check needs.

Kept deliberately narrow (a wrong "likely trigger" sends on-call after the wrong person): deletes of role
assignments on the source's or the vault's chain, network and firewall writes on the source, access
policy and vault writes on the vault, a new secret version. Never an attempt (`Failed`), a delete that
found nothing (204), a role assignment created, an `accessPolicies/add`, nor a write whose request body
(when the event keeps it) narrowed nothing the checks read. Everything else stays in the timeline.

A write's request body can only say "may have narrowed" (the values before it are not in the event): a
network closed by default (`networkAcls.defaultAction: Deny`, `publicNetworkAccess: Disabled`), shared
keys or local auth turned off, access policies, admins or the permission model set. A body with none of
these (tags, `defaultAction: Allow`) is not a trigger; property changes, where Azure recorded them,
decide instead (`properties.narrowed_by`).
Storage: https://learn.microsoft.com/en-us/rest/api/storagerp/storage-accounts/update
Key Vault: https://learn.microsoft.com/en-us/rest/api/keyvault/keyvault/vaults/update-access-policy
(`PUT …/vaults/{name}/accessPolicies/{add|replace|remove}`)
"""

from __future__ import annotations

from typing import Any

from checks.changes.events import Event

SOURCE_ACCESS = "source-access"
READER_ROLE = "reader-role"
PRIVATE_NETWORK = "private-network"
KEY_VAULT_ACCESS = "key-vault-access"
KEY_VAULT_SECRET = "key-vault-secret"
CREDENTIAL_ROTATION = "credential-rotation"
SECRET_CHECKS = (CREDENTIAL_ROTATION, KEY_VAULT_SECRET)

_NETWORK_WRITES = (
    "microsoft.storage/storageaccounts/write",
    "microsoft.sql/servers/write",
    "microsoft.synapse/workspaces/write",
    "microsoft.documentdb/databaseaccounts/write",
)
_NETWORK_CHILDREN = (
    "microsoft.sql/servers/firewallrules/delete",
    "microsoft.sql/servers/virtualnetworkrules/delete",
    "microsoft.synapse/workspaces/firewallrules/delete",
    "microsoft.storage/storageaccounts/privateendpointconnections/",
    "microsoft.sql/servers/privateendpointconnections/",
)
_SQL_IDENTITY = (
    "microsoft.sql/servers/administrators/",
    "microsoft.sql/servers/azureadonlyauthentications/write",
    "microsoft.synapse/workspaces/administrators/",
)
_VAULT = ("microsoft.keyvault/vaults/accesspolicies/write", "microsoft.keyvault/vaults/write")
REFINED = frozenset(_NETWORK_WRITES + _VAULT)
"""Writes whose property changes, where Azure recorded them, decide what they narrowed."""


_CLOSED_ACCESS = ("disabled", "securedbyperimeter")


def _lower(value: Any) -> str:
    return str(value).strip().lower() if value is not None else ""


def _get(body: Any, name: str) -> Any:
    """A property whatever its case (`publicNetworkAccess`, `PublicNetworkAccess`)."""
    if not isinstance(body, dict):
        return None
    return next((v for k, v in body.items() if k.lower() == name.lower()), None)


def narrowed_by_request(body: dict[str, Any], role: str, *, policy_kind: str = "") -> tuple[str, ...]:
    """The checks a write with this request body may have broken on a touched resource of `role`;
    () when the body narrowed nothing the checks read."""
    acls = _get(body, "networkAcls") or _get(body, "networkRuleSet")
    network = (
        _lower(_get(acls, "defaultAction")) == "deny"
        or _lower(_get(body, "publicNetworkAccess")) in _CLOSED_ACCESS
        or _lower(_get(body, "isVirtualNetworkFilterEnabled")) == "true"
        or (_get(acls, "bypass") is not None and "azureservices" not in _lower(_get(acls, "bypass")))
    )
    if role == "key vault":
        policies = _get(body, "accessPolicies") is not None and policy_kind != "add"
        model = _get(body, "enableRbacAuthorization") is not None
        return (KEY_VAULT_ACCESS,) if network or policies or model else ()
    if role != "source":
        return ()
    access = (
        _lower(_get(body, "allowSharedKeyAccess")) == "false"
        or _lower(_get(body, "disableLocalAuth")) == "true"
        or _get(body, "administrators") is not None
    )
    return tuple(check for check, hit in ((PRIVATE_NETWORK, network), (SOURCE_ACCESS, access)) if hit)


def _policy_kind(event: Event) -> str:
    """`add`, `replace` or `remove` for an access policy write (the last segment of its resource id)."""
    if not event.op.startswith("microsoft.keyvault/vaults/accesspolicies/"):
        return ""
    return event.resource_id.rstrip("/").rsplit("/", 1)[-1].lower()


def _removes_role(event: Event, identities: frozenset[str]) -> bool:
    """A role assignment deleted for the identity under test, or for a principal Azure did not record
    (it may be a group the identity is in)."""
    if not (event.is_role_assignment and event.verb == "delete"):
        return False
    principal = event.principal_id
    return principal is None or not identities or principal in identities


def narrowed_checks(
    event: Event, role: str, identities: frozenset[str], *, request: dict[str, Any] | None = None
) -> tuple[str, ...]:
    """The checks this succeeded event may have broken, given which touched resource it is on.
    `request`: the write's body from its operation's `Started` event, where Azure kept it there."""
    if not event.succeeded or event.removed_nothing:
        return ()
    op = event.op
    if event.is_role_assignment:  # a role on the Purview account or its storage grants no source access
        if not _removes_role(event, identities):
            return ()
        return {"key vault": (KEY_VAULT_ACCESS,), "source": (SOURCE_ACCESS, READER_ROLE)}.get(role, ())
    kind = _policy_kind(event)
    if kind == "add":  # only ever grants more
        return ()
    body = event.request if event.request is not None else request
    if body is not None and op in REFINED:
        return narrowed_by_request(body, role, policy_kind=kind)
    if role == "source":
        if op in _NETWORK_WRITES:
            return (
                (PRIVATE_NETWORK, SOURCE_ACCESS)
                if op.startswith("microsoft.storage/")
                else (PRIVATE_NETWORK,)
            )
        if op.startswith(_NETWORK_CHILDREN):
            return (PRIVATE_NETWORK,)
        if op.startswith(_SQL_IDENTITY):
            return (SOURCE_ACCESS,)
    if role == "key vault" and op in _VAULT:
        return (KEY_VAULT_ACCESS,)
    return ()
