"""Which failing checks a change can explain: it removed or narrowed what that check needs.

Kept deliberately narrow (a wrong "likely trigger" sends on-call after the wrong person): deletes of role
assignments on the chain, network and firewall writes on the source, access policy and vault writes on
the vault, a new secret version. Everything else stays in the timeline, unmarked.
"""

from __future__ import annotations

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


def _removes_role(event: Event, identities: frozenset[str]) -> bool:
    """A role assignment deleted for the identity under test, or for a principal Azure did not record
    (it may be a group the identity is in)."""
    if not (event.is_role_assignment and event.verb == "delete"):
        return False
    principal = event.principal_id
    return principal is None or not identities or principal in identities


def narrowed_checks(event: Event, role: str, identities: frozenset[str]) -> tuple[str, ...]:
    """The checks this succeeded event may have broken, given which touched resource it is on."""
    if not event.succeeded:
        return ()
    op = event.op
    if _removes_role(event, identities):
        return (KEY_VAULT_ACCESS,) if role == "key vault" else (SOURCE_ACCESS, READER_ROLE)
    if event.is_role_assignment:
        return ()
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
