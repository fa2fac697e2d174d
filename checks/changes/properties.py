"""Property changes (`Microsoft.Resources/changes`): before → after of the properties the checks read.

Azure keeps 14 days of them per top-level resource, each with the ARM correlation id of the write that
made it, so a write in the Activity Log ("settings written") can say what it changed, and a write that
only touched tags is not told as a trigger. Only the properties the checks decide on are kept.
https://learn.microsoft.com/en-us/rest/api/resources/changes/list
https://learn.microsoft.com/en-us/azure/governance/resource-graph/how-to/get-resource-changes
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from checks.changes.record import PropertyChange
from checks.changes.triggers import KEY_VAULT_ACCESS, PRIVATE_NETWORK, SOURCE_ACCESS
from checks.gateways.api import Json
from checks.times import parse_time

_INDEX = re.compile(r"\[\d+\]")
READ_BY_CHECKS = (
    "properties.networkacls",
    "properties.publicnetworkaccess",
    "properties.allowsharedkeyaccess",
    "properties.accesspolicies",
    "properties.enablerbacauthorization",
    "properties.iprules",
    "properties.isvirtualnetworkfilterenabled",
    "properties.virtualnetworkrules",
    "properties.administrators",
    "properties.disablelocalauth",
    "properties.managedresourcespublicnetworkaccess",
)


@dataclass(frozen=True)
class ResourceChange:
    id: str
    target: str
    at: datetime | None
    correlation_id: str | None
    change_type: str
    properties: tuple[PropertyChange, ...]


def _path(name: str) -> str:
    return _INDEX.sub("", name).lower()


def _text(value: object) -> str | None:
    """The value as Azure wrote it; the string `"null"` (the spec's example: an inserted tag's
    `previousValue`) is no value."""
    return None if value is None or value == "null" else str(value)


def parse(doc: Json) -> ResourceChange | None:
    """A ChangeResourceResult, keeping only the properties the checks read; None when unreadable."""
    props = doc.get("properties")
    if not isinstance(props, dict) or not props.get("targetResourceId"):
        return None
    attributes = props.get("changeAttributes") or {}
    changes = props.get("changes") or {}
    kept = tuple(
        PropertyChange(
            property=str(name),
            before=_text(detail.get("previousValue")),
            after=_text(detail.get("newValue")),
            kind=str(detail.get("propertyChangeType") or "Update"),
            by=_text(detail.get("changeCategory")),
        )
        for name, detail in (changes.items() if isinstance(changes, dict) else ())
        if isinstance(detail, dict) and _path(str(name)).startswith(READ_BY_CHECKS)
    )
    return ResourceChange(
        id=str(doc.get("id") or ""),
        target=str(props["targetResourceId"]),
        at=parse_time(attributes.get("timestamp")),
        correlation_id=_text(attributes.get("correlationId")),
        change_type=str(props.get("changeType") or "Update"),
        properties=kept,
    )


def _after(change: PropertyChange) -> str:
    return (change.after or "").strip().lower()


def _closes_network(change: PropertyChange) -> bool:
    path = _path(change.property)
    if path.endswith("defaultaction"):
        return _after(change) == "deny"
    if path.endswith("publicnetworkaccess"):
        return _after(change) in ("disabled", "securedbyperimeter")
    if path.endswith("bypass"):
        return "azureservices" not in _after(change)
    if path.endswith("isvirtualnetworkfilterenabled"):
        return _after(change) == "true"
    if any(part in path for part in ("iprules", "virtualnetworkrules", "resourceaccessrules")):
        return change.kind == "Remove" or (change.kind == "Update" and bool(change.before))
    return False


def _narrows_access(change: PropertyChange) -> bool:
    path = _path(change.property)
    if path.endswith("allowsharedkeyaccess"):
        return _after(change) == "false"
    if path.endswith("disablelocalauth"):
        return _after(change) == "true"
    if path.startswith(("properties.administrators", "properties.accesspolicies")):
        return change.kind in ("Remove", "Update")
    return path.startswith("properties.enablerbacauthorization")


def narrowed_by(properties: tuple[PropertyChange, ...], role: str) -> tuple[str, ...]:
    """The checks these property changes may have broken, on a touched resource of `role`."""
    network = any(_closes_network(p) for p in properties)
    access = any(_narrows_access(p) for p in properties)
    if role == "key vault":
        return (KEY_VAULT_ACCESS,) if network or access else ()
    if role != "source":
        return ()
    return tuple(check for check, hit in ((PRIVATE_NETWORK, network), (SOURCE_ACCESS, access)) if hit)


def top_level(resource_id: str) -> bool:
    """`/subscriptions/s/resourceGroups/g/providers/NS/type/name`: what the changes API serves."""
    parts = resource_id.strip("/").split("/")
    return len(parts) == 8 and parts[0].lower() == "subscriptions" and parts[4].lower() == "providers"
