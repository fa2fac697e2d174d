"""What the checks need to know per Purview data-source kind: one immutable table, no guessing elsewhere.

A kind missing here gets no automatic source-access / network check (the checks say `skipped`, naming
the kind), because a wrong rule is worse than an honest "not checked".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Family(StrEnum):
    BLOB = "blob"  # storage accounts read through blob data actions (Blob, ADLS Gen2)
    SQL = "sql"  # Azure SQL server / managed instance: Entra admin + database user
    SYNAPSE = "synapse"  # Synapse workspace: database user in its SQL pools
    COSMOS = "cosmos"  # Cosmos DB: scanned with an account key
    MULTI = "multi"  # subscription / resource group registrations enumerating many resources
    OTHER = "other"  # known Azure kind without an automatic data-plane check


BLOB_READ_ACTION = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
BLOB_READER_ROLE = "Storage Blob Data Reader"
BLOB_READER_ROLE_ID = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
READER_ROLE = "Reader"
READER_ROLE_ID = "acdd72a7-3385-48ef-bd42-f606fba81ae7"

STORAGE_TYPE = "Microsoft.Storage/storageAccounts"
SQL_SERVER_TYPE = "Microsoft.Sql/servers"
SQL_MI_TYPE = "Microsoft.Sql/managedInstances"
SYNAPSE_TYPE = "Microsoft.Synapse/workspaces"
COSMOS_TYPE = "Microsoft.DocumentDB/databaseAccounts"
SUBSCRIPTION_TYPE = "Microsoft.Resources/subscriptions"
RESOURCE_GROUP_TYPE = "Microsoft.Resources/subscriptions/resourceGroups"

# Control-plane reads a multi-source (subscription / resource group) scan relies on: enumerating resource
# groups and each resource type it can expand to. A role must grant all of them to count as "Reader".
MULTI_SOURCE_READ_ACTIONS: tuple[str, ...] = (
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Resources/subscriptions/resources/read",
    "Microsoft.Storage/storageAccounts/read",
    "Microsoft.Sql/servers/read",
    "Microsoft.Sql/servers/databases/read",
    "Microsoft.Synapse/workspaces/read",
    "Microsoft.DocumentDB/databaseAccounts/read",
)


@dataclass(frozen=True)
class SourceKind:
    kind: str
    family: Family
    resource_type: str  # ARM type of the data source's `resourceId`
    data_action: str | None = None  # the data-plane action the scan identity needs (blob kinds)
    data_role: str | None = None  # built-in role granting it, for fix commands only
    data_role_id: str | None = None

    @property
    def read_action(self) -> str:
        """The control-plane read the guide's "at least Reader" boils down to for this resource."""
        return f"{self.resource_type}/read"


def _blob(kind: str) -> SourceKind:
    return SourceKind(
        kind, Family.BLOB, STORAGE_TYPE, BLOB_READ_ACTION, BLOB_READER_ROLE, BLOB_READER_ROLE_ID
    )


KINDS: tuple[SourceKind, ...] = (
    _blob("AzureStorage"),
    _blob("AdlsGen2"),
    SourceKind("AzureSqlDatabase", Family.SQL, SQL_SERVER_TYPE),
    SourceKind("AzureSqlDataWarehouse", Family.SQL, SQL_SERVER_TYPE),
    SourceKind("AzureSqlDatabaseManagedInstance", Family.SQL, SQL_MI_TYPE),
    SourceKind("AzureSynapseWorkspace", Family.SYNAPSE, SYNAPSE_TYPE),
    SourceKind("AzureSynapse", Family.SYNAPSE, SYNAPSE_TYPE),
    SourceKind("AzureCosmosDb", Family.COSMOS, COSMOS_TYPE),
    SourceKind("AzureSubscription", Family.MULTI, SUBSCRIPTION_TYPE),
    SourceKind("AzureResourceGroup", Family.MULTI, RESOURCE_GROUP_TYPE),
    SourceKind("AzureFileService", Family.OTHER, STORAGE_TYPE),
    SourceKind("AdlsGen1", Family.OTHER, "Microsoft.DataLakeStore/accounts"),
    SourceKind("AzureDataExplorer", Family.OTHER, "Microsoft.Kusto/clusters"),
)


def source_kind(kind: str | None) -> SourceKind | None:
    """The table row for a data-source kind (case-insensitive), None when the bot has no rule for it."""
    wanted = (kind or "").lower()
    return next((k for k in KINDS if k.kind.lower() == wanted), None)


def is_multi_source(kind: str | None) -> bool:
    found = source_kind(kind)
    return found is not None and found.family is Family.MULTI


def id_part(resource_id: str, key: str) -> str | None:
    """The value after `key` in an ARM id (`resourceGroups` → the group), case-insensitive."""
    parts = resource_id.strip("/").split("/")
    for i, part in enumerate(parts[:-1]):
        if part.lower() == key.lower():
            return parts[i + 1]
    return None


def server_id(resource_id: str) -> str:
    """The server (or workspace) id from a server or database id `…/servers/s/databases/d` → `…/servers/s`."""
    lowered = resource_id.lower()
    for child in ("/databases/", "/sqlpools/"):
        cut = lowered.find(child)
        if cut >= 0:
            return resource_id[:cut]
    return resource_id.rstrip("/")


def storage_has_hierarchical_namespace(kind: SourceKind, storage_props: dict[str, object]) -> bool:
    """Whether a storage account is ADLS Gen2 (hierarchical namespace), where POSIX ACLs apply after RBAC.

    `isHnsEnabled` decides when ARM states it. When it is absent, an `AdlsGen2` registration is taken as
    hierarchical (the kind implies it, and assuming ACLs only softens a verdict to `warn`); a Blob one is not.
    https://learn.microsoft.com/en-us/azure/storage/blobs/data-lake-storage-access-control-model
    """
    stated = storage_props.get("isHnsEnabled")
    if isinstance(stated, bool):
        return stated
    return kind.kind.lower() == "adlsgen2"


def entra_only_id(kind: SourceKind, server: str) -> str:
    """The ARM id of the server's (instance's, workspace's) Entra-only authentication setting.

    SQL server / managed instance: `…/azureADOnlyAuthentications/Default`; Synapse: `…/default`.
    https://learn.microsoft.com/en-us/azure/azure-sql/database/authentication-azure-ad-only-authentication
    """
    name = "default" if kind.family is Family.SYNAPSE else "Default"
    return f"{server.rstrip('/')}/azureADOnlyAuthentications/{name}"


def child_scope_name(scope: str) -> str:
    """A child scope's short name: `…/blobServices/default/containers/raw` → `raw`."""
    return scope.rstrip("/").rsplit("/", 1)[-1]
