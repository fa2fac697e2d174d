"""Builders of private endpoints, private DNS zones, triggers and runtime status for the network checks'
tests (private-dns, purview-private, scan-schedule), over `tests.checks.worlds`' base world.

Everything is Azure's own wire JSON: `Microsoft.Network/privateEndpoints` (2023-09-01) and its
`privateDnsZoneGroups`, `Microsoft.Network/privateDnsZones` with `A/{name}` and `virtualNetworkLinks/{name}`
(2024-06-01), a resource's `privateEndpointConnections[]` entry, and Purview's scan trigger (2023-09-01).
"""

from __future__ import annotations

from typing import Any

from tests.checks import worlds as w

Json = dict[str, Any]

NET_RG = f"{w.SUB_ID}/resourceGroups/rg-net"
VNET = f"{NET_RG}/providers/Microsoft.Network/virtualNetworks/vnet-scan"
SUBNET = f"{VNET}/subnets/endpoints"
OTHER_SUB = "99999999-9999-9999-9999-999999999999"  # a subscription the bot cannot list (e.g. Microsoft's)
SHIR = "shir-01"


def endpoint_id(name: str, *, rg: str = NET_RG) -> str:
    return f"{rg}/providers/Microsoft.Network/privateEndpoints/{name}"


def zone_id(zone: str) -> str:
    return f"{NET_RG}/providers/Microsoft.Network/privateDnsZones/{zone}"


def private_endpoint(
    name: str,
    target: str,
    group: str,
    *,
    status: str = "Approved",
    manual: bool = False,
    ip: str = "10.1.0.5",
) -> Json:
    """The endpoint resource (`privateLinkServiceConnections`, or the manual ones when approval is asked)."""
    link = {
        "name": f"{name}-link",
        "properties": {
            "privateLinkServiceId": target,
            "groupIds": [group],
            "privateLinkServiceConnectionState": {
                "status": status,
                "description": "",
                "actionsRequired": "None",
            },
        },
    }
    return {
        "id": endpoint_id(name),
        "name": name,
        "type": "Microsoft.Network/privateEndpoints",
        "location": "westeurope",
        "properties": {
            "provisioningState": "Succeeded",
            "subnet": {"id": SUBNET},
            "privateLinkServiceConnections": [] if manual else [link],
            "manualPrivateLinkServiceConnections": [link] if manual else [],
            "customDnsConfigs": [],
            "networkInterfaces": [
                {"id": f"{NET_RG}/providers/Microsoft.Network/networkInterfaces/{name}.nic"}
            ],
        },
    }


def connection(target: str, pe_id: str, status: str = "Approved") -> Json:
    """The entry a private endpoint leaves in its target's `privateEndpointConnections`."""
    name = f"{pe_id.rsplit('/', 1)[-1]}.conn"
    return {
        "id": f"{target}/privateEndpointConnections/{name}",
        "name": name,
        "type": "Microsoft.Storage/storageAccounts/privateEndpointConnections",
        "properties": {
            "privateEndpoint": {"id": pe_id},
            "privateLinkServiceConnectionState": {
                "status": status,
                "description": "",
                "actionRequired": "None",
            },
            "provisioningState": "Succeeded",
        },
    }


def zone_group(pe_id: str, zone: str, fqdn: str, ip: str = "10.1.0.5") -> Json:
    label = fqdn.split(".", 1)[0]
    return {
        "id": f"{pe_id}/privateDnsZoneGroups/default",
        "name": "default",
        "properties": {
            "provisioningState": "Succeeded",
            "privateDnsZoneConfigs": [
                {
                    "name": zone.replace(".", "-"),
                    "properties": {
                        "privateDnsZoneId": zone_id(zone),
                        "recordSets": [
                            {
                                "recordType": "A",
                                "recordSetName": label,
                                "fqdn": f"{label}.{zone}",
                                "ttl": 10,
                                "ipAddresses": [ip],
                                "provisioningState": "Succeeded",
                            }
                        ],
                    },
                }
            ],
        },
    }


def zone(name: str) -> Json:
    return {
        "id": zone_id(name),
        "name": name,
        "type": "Microsoft.Network/privateDnsZones",
        "location": "global",
        "properties": {"numberOfRecordSets": 2, "provisioningState": "Succeeded"},
    }


def a_record(zone: str, name: str, ip: str = "10.1.0.5") -> Json:
    return {
        "id": f"{zone_id(zone)}/A/{name}",
        "name": name,
        "type": "Microsoft.Network/privateDnsZones/A",
        "properties": {
            "ttl": 10,
            "fqdn": f"{name}.{zone}.",
            "isAutoRegistered": False,
            "aRecords": [{"ipv4Address": ip}],
        },
    }


def vnet_link(zone: str, vnet: str = VNET) -> Json:
    return {
        "id": f"{zone_id(zone)}/virtualNetworkLinks/{vnet.rsplit('/', 1)[-1]}-link",
        "name": f"{vnet.rsplit('/', 1)[-1]}-link",
        "type": "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
        "location": "global",
        "properties": {
            "virtualNetwork": {"id": vnet},
            "registrationEnabled": False,
            "virtualNetworkLinkState": "Completed",
            "provisioningState": "Succeeded",
        },
    }


def add_endpoint(
    world: Json,
    target: str,
    name: str,
    group: str,
    *,
    status: str = "Approved",
    dns: bool = True,
    record: bool = True,
    link: bool = True,
    ip: str = "10.1.0.5",
) -> str:
    """A private endpoint `name` to `target` for `group`, its connection on the target, and (by default) a
    zone group writing `privatelink.<group>…` whose zone has the A record and a link to VNET."""
    from checks.private_endpoints import zone_for

    pe = private_endpoint(name, target, group, status=status, ip=ip)
    res = next(r for r in world["resources"] if r["id"].lower() == target.lower())
    res["properties"].setdefault("privateEndpointConnections", []).append(
        connection(target, pe["id"], status)
    )
    world["resources"].append(pe)
    zone_name = zone_for(target, group)
    label = target.rsplit("/", 1)[-1]
    if dns:
        assert zone_name is not None
        world["resources"].append({**zone_group(pe["id"], zone_name, f"{label}.{zone_name}", ip)})
        if not any(r["id"] == zone_id(zone_name) for r in world["resources"]):
            world["resources"].append(zone(zone_name))
        if record:
            world["resources"].append(a_record(zone_name, label, ip))
        if link and not any(
            r["id"].startswith(zone_id(zone_name) + "/virtualNetworkLinks/") for r in world["resources"]
        ):
            world["resources"].append(vnet_link(zone_name))
    return str(pe["id"])


def on_shir(world: Json, source: str = "sales-adls", ir: str = SHIR) -> None:
    """Every scan of `source` on self-hosted runtime `ir`, with a credential (as the guide asks there)."""
    if not any(r["name"] == ir for r in w.pv(world)["integrationRuntimes"]):
        w.pv(world)["integrationRuntimes"].append(w.integration_runtime(ir, "SelfHosted"))
    for scan in w.pv(world)["scans"][source]:
        scan["properties"]["connectedVia"] = {"referenceName": ir}


def trigger(
    state: str = "Enabled",
    frequency: str = "Week",
    interval: int = 1,
    *,
    start: str = "2026-01-05T02:00:00Z",
    end: str | None = None,
    last_scheduled: str | None = None,
    modified: str = "2026-10-01T09:00:00Z",
) -> Json:
    return {
        "name": "default",
        "properties": {
            "recurrence": {
                "frequency": frequency,
                "interval": interval,
                "startTime": start,
                "endTime": end,
                "schedule": {"hours": [2], "minutes": [0]},
            },
            "recurrenceInterval": None,
            "createdAt": "2026-01-04T10:00:00Z",
            "lastModifiedAt": modified,
            "lastScheduled": last_scheduled,
            "scanLevel": "Incremental",
            "state": state,
        },
    }


def shir_status(*nodes: tuple[str, int | None, int]) -> Json:
    """A self-hosted runtime's status; nodes: (name, concurrentJobsRunning or None, concurrentJobsLimit)."""
    return {
        "name": SHIR,
        "kind": "SelfHosted",
        "properties": {
            "state": "Online",
            "typeProperties": {
                "nodes": [
                    {
                        "nodeName": name,
                        "status": "Online",
                        "concurrentJobsLimit": limit,
                        **({"concurrentJobsRunning": running} if running is not None else {}),
                    }
                    for name, running, limit in nodes
                ]
            },
        },
    }
