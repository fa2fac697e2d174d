"""A resource's private endpoints as Azure Resource Manager shows them, with the DNS each one relies on.

What is read (all ARM, Reader on the resource groups involved):
- the resource's own `properties.privateEndpointConnections[]`: the connection's approval
  (`privateLinkServiceConnectionState.status`) and the endpoint's id (`properties.privateEndpoint.id`);
- the endpoint, `Microsoft.Network/privateEndpoints/{pe}` (api-version 2023-09-01): the sub-resources it
  carries (`privateLinkServiceConnections[]` / `manualPrivateLinkServiceConnections[]`
  `.properties.groupIds`), its subnet (hence its VNet) and `customDnsConfigs[]` (FQDN → private address);
- its DNS zone groups, `…/privateEndpoints/{pe}/privateDnsZoneGroups` (2023-09-01):
  `privateDnsZoneConfigs[].properties.{privateDnsZoneId, recordSets[]}`;
- each zone's A record sets, `…/privateDnsZones/{zone}/A`, and its `virtualNetworkLinks` (2024-06-01,
  specification/privatedns/resource-manager/Microsoft.Network/stable/2024-06-01).

An endpoint in a subscription the bot cannot list (a Purview managed private endpoint lives in Microsoft's,
a partner's in theirs) is not read: it is reported as foreign, never judged. Reads are memoised by `Facts`;
the endpoint and its zone groups are read side by side, then the zones' records and links side by side.
Why the zone, its A record and its VNet link matter:
https://learn.microsoft.com/en-us/azure/private-link/private-endpoint-dns
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from checks.accounts import arm_name
from checks.errors import GatewayError
from checks.facts import Facts
from checks.gateways.api import Json
from checks.source_kinds import id_part

T = TypeVar("T")

# The private DNS zone each sub-resource (groupId) resolves in, Azure public cloud, by the target's type
# (the same groupId means different zones on different services: Cosmos DB's `Sql` and Synapse's `Sql`).
# https://learn.microsoft.com/en-us/azure/private-link/private-endpoint-dns#azure-services-dns-zone-configuration
ZONES: dict[tuple[str, str], str] = {
    ("microsoft.storage/storageaccounts", "blob"): "privatelink.blob.core.windows.net",
    ("microsoft.storage/storageaccounts", "dfs"): "privatelink.dfs.core.windows.net",
    ("microsoft.storage/storageaccounts", "queue"): "privatelink.queue.core.windows.net",
    ("microsoft.storage/storageaccounts", "file"): "privatelink.file.core.windows.net",
    ("microsoft.sql/servers", "sqlserver"): "privatelink.database.windows.net",
    ("microsoft.synapse/workspaces", "sql"): "privatelink.sql.azuresynapse.net",
    ("microsoft.synapse/workspaces", "sqlondemand"): "privatelink.sql.azuresynapse.net",
    ("microsoft.documentdb/databaseaccounts", "sql"): "privatelink.documents.azure.com",
    ("microsoft.keyvault/vaults", "vault"): "privatelink.vaultcore.azure.net",
    ("microsoft.purview/accounts", "account"): "privatelink.purview.azure.com",
    ("microsoft.purview/accounts", "portal"): "privatelink.purviewstudio.azure.com",
    ("microsoft.eventhub/namespaces", "namespace"): "privatelink.servicebus.windows.net",
}


def resource_type_of(resource_id: str) -> str:
    """`namespace/type` of an ARM id, lower case (`microsoft.storage/storageaccounts`)."""
    parts = resource_id.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    if "providers" not in lowered:
        return ""
    i = lowered.index("providers")
    return "/".join(lowered[i + 1 : i + 3])


def zone_for(resource_id: str, group: str) -> str | None:
    return ZONES.get((resource_type_of(resource_id), group.lower()))


@dataclass(frozen=True)
class Connection:
    """One entry of a resource's `privateEndpointConnections`."""

    id: str  # the connection's own ARM id (what `az network private-endpoint-connection approve` takes)
    name: str
    endpoint_id: str
    status: str  # Approved | Pending | Rejected | Disconnected | ''
    groups: tuple[str, ...]  # as the connection states them (SQL, Cosmos DB do); else from the endpoint

    @property
    def approved(self) -> bool:
        return self.status.lower() == "approved"

    @property
    def endpoint_name(self) -> str:
        return arm_name(self.endpoint_id) if self.endpoint_id else "?"


def connections_of(resource: Json) -> list[Connection]:
    found: list[Connection] = []
    for c in (resource.get("properties") or {}).get("privateEndpointConnections") or []:
        if not isinstance(c, dict):
            continue
        props = c.get("properties") or {}
        state = props.get("privateLinkServiceConnectionState") or {}
        groups = props.get("groupIds") or ([props["groupId"]] if props.get("groupId") else [])
        found.append(
            Connection(
                id=str(c.get("id") or ""),
                name=str(c.get("name") or arm_name(str(c.get("id") or "")) or "?"),
                endpoint_id=str((props.get("privateEndpoint") or {}).get("id") or ""),
                status=str(state.get("status") or ""),
                groups=tuple(str(g) for g in groups if g),
            )
        )
    return found


@dataclass(frozen=True)
class Zone:
    """A private DNS zone an endpoint's zone group writes to, with what ARM says about it."""

    id: str
    records: list[Json] | GatewayError
    links: list[Json] | GatewayError

    @property
    def name(self) -> str:
        return arm_name(self.id)

    def a_record(self, name: str) -> Json | None:
        if isinstance(self.records, GatewayError):
            return None
        return next((r for r in self.records if str(r.get("name", "")).lower() == name.lower()), None)

    def linked_vnets(self) -> list[str]:
        if isinstance(self.links, GatewayError):
            return []
        return [
            str(((link.get("properties") or {}).get("virtualNetwork") or {}).get("id") or "")
            for link in self.links
        ]


def record_addresses(record: Json) -> list[str]:
    return [
        str(a.get("ipv4Address"))
        for a in (record.get("properties") or {}).get("aRecords") or []
        if isinstance(a, dict) and a.get("ipv4Address")
    ]


@dataclass(frozen=True)
class Endpoint:
    """A connection with its endpoint and DNS, as far as the bot could read them."""

    connection: Connection
    foreign: bool = False  # in a subscription the bot cannot list: not read
    resource: Json | GatewayError | None = None
    zone_groups: list[Json] | GatewayError | None = None
    zones: dict[str, Zone] = field(default_factory=dict)  # lower-case zone id → zone

    @property
    def groups(self) -> tuple[str, ...]:
        if self.connection.groups:
            return self.connection.groups
        if not isinstance(self.resource, dict):
            return ()
        props = self.resource.get("properties") or {}
        links = (props.get("privateLinkServiceConnections") or []) + (
            props.get("manualPrivateLinkServiceConnections") or []
        )
        return tuple(
            str(g)
            for link in links
            if isinstance(link, dict)
            for g in (link.get("properties") or {}).get("groupIds") or []
        )

    def serves(self, group: str) -> bool:
        return group.lower() in {g.lower() for g in self.groups}

    @property
    def vnet(self) -> str | None:
        """The VNet of the endpoint's subnet (`…/virtualNetworks/V/subnets/S` → `…/virtualNetworks/V`)."""
        if not isinstance(self.resource, dict):
            return None
        subnet = str(((self.resource.get("properties") or {}).get("subnet") or {}).get("id") or "")
        cut = subnet.lower().find("/subnets/")
        return subnet[:cut] if cut > 0 else None

    def dns_configs(self) -> list[tuple[str, list[str]]]:
        """(FQDN, private addresses) the endpoint publishes: zone-group record sets, else customDnsConfigs."""
        out: list[tuple[str, list[str]]] = []
        for group in self.zone_groups if isinstance(self.zone_groups, list) else []:
            for cfg in (group.get("properties") or {}).get("privateDnsZoneConfigs") or []:
                for rs in (cfg.get("properties") or {}).get("recordSets") or []:
                    if isinstance(rs, dict) and rs.get("fqdn"):
                        out.append(
                            (str(rs["fqdn"]).rstrip("."), [str(ip) for ip in rs.get("ipAddresses") or []])
                        )
        if out or not isinstance(self.resource, dict):
            return out
        for cfg in (self.resource.get("properties") or {}).get("customDnsConfigs") or []:
            if isinstance(cfg, dict) and cfg.get("fqdn"):
                out.append((str(cfg["fqdn"]).rstrip("."), [str(ip) for ip in cfg.get("ipAddresses") or []]))
        return out

    def zone_configs(self) -> list[tuple[str, list[Json]]]:
        """(zone id, record sets the zone group says it wrote) for every zone of every zone group."""
        out: list[tuple[str, list[Json]]] = []
        for group in self.zone_groups if isinstance(self.zone_groups, list) else []:
            for cfg in (group.get("properties") or {}).get("privateDnsZoneConfigs") or []:
                props = (cfg or {}).get("properties") or {}
                if props.get("privateDnsZoneId"):
                    sets = [r for r in props.get("recordSets") or [] if isinstance(r, dict)]
                    out.append((str(props["privateDnsZoneId"]), sets))
        return out

    def evidence(self) -> dict[str, Any]:
        ev: dict[str, Any] = {
            "connection": self.connection.name,
            "connectionId": self.connection.id or None,
            "privateEndpoint": self.connection.endpoint_id or None,
            "status": self.connection.status or None,
            "groupIds": list(self.groups),
        }
        if self.foreign:
            ev["foreign"] = True
            return ev
        if isinstance(self.resource, GatewayError):
            ev["endpointError"] = self.resource.as_evidence()
        ev["virtualNetwork"] = self.vnet
        if isinstance(self.zone_groups, GatewayError):
            ev["zoneGroupsError"] = self.zone_groups.as_evidence()
        elif self.zone_groups is not None:
            ev["zoneGroups"] = [str(g.get("name")) for g in self.zone_groups]
        ev["dns"] = [{"fqdn": f, "ipAddresses": ips} for f, ips in self.dns_configs()]
        ev["zones"] = [
            {
                "zone": z.name,
                "aRecords": (
                    {"error": z.records.as_evidence()}
                    if isinstance(z.records, GatewayError)
                    else {str(r.get("name")): record_addresses(r) for r in z.records}
                ),
                "linkedVirtualNetworks": (
                    {"error": z.links.as_evidence()}
                    if isinstance(z.links, GatewayError)
                    else z.linked_vnets()
                ),
            }
            for z in self.zones.values()
        ]
        return ev


async def _quietly(call: Awaitable[T]) -> T | GatewayError:
    try:
        return await call
    except GatewayError as error:
        return error


async def readable_subscriptions(facts: Facts) -> set[str] | GatewayError:
    subs = await _quietly(facts.subscriptions())
    if isinstance(subs, GatewayError):
        return subs
    return {str(s.get("subscriptionId", "")).lower() for s in subs}


async def read_endpoint(facts: Facts, connection: Connection, subscriptions: set[str] | None) -> Endpoint:
    """The connection's endpoint, its zone groups and their zones (records and links), read concurrently.

    `subscriptions`: those the bot can list (None: unknown, read anyway); an endpoint elsewhere is foreign.
    """
    pe = connection.endpoint_id
    if not pe or (
        subscriptions is not None and (id_part(pe, "subscriptions") or "").lower() not in subscriptions
    ):
        return Endpoint(connection, foreign=True)
    resource, groups = await asyncio.gather(
        _quietly(facts.resource(pe)), _quietly(facts.children(pe, "privateDnsZoneGroups"))
    )
    endpoint = Endpoint(connection, resource=resource, zone_groups=groups)
    zone_ids = list(dict.fromkeys(z for z, _ in endpoint.zone_configs()))
    reads = await asyncio.gather(
        *(
            asyncio.gather(
                _quietly(facts.children(z, "A")), _quietly(facts.children(z, "virtualNetworkLinks"))
            )
            for z in zone_ids
        )
    )
    zones = {z.lower(): Zone(z, records, links) for z, (records, links) in zip(zone_ids, reads, strict=True)}
    return Endpoint(connection, resource=resource, zone_groups=groups, zones=zones)


async def read_endpoints(facts: Facts, resource: Json) -> list[Endpoint]:
    """Every private endpoint connection of `resource`, each with what could be read about it."""
    connections = connections_of(resource)
    if not connections:
        return []
    subs = await readable_subscriptions(facts)
    known = None if isinstance(subs, GatewayError) else subs
    return list(await asyncio.gather(*(read_endpoint(facts, c, known) for c in connections)))
