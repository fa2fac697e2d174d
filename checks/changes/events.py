"""Activity Log `EventData` as the timeline reads it: what was done to what, by whom, in one line.

Azure writes several events per operation (`Started`, `Accepted` for a long-running one, then
`Succeeded` / `Failed`, each its own `eventDataId`); only the final ones say what happened. `subStatus`
carries the HTTP status of the call ("NoContent (HTTP Status Code: 204)"): a delete answered 204 found
nothing to delete (ARM's contract for DELETE), so it removed nothing. Role assignment events carry the
assignment in `properties.requestbody` (writes) or `properties.responseBody` (deletes) as a JSON string.
https://learn.microsoft.com/en-us/azure/azure-monitor/essentials/activity-log-schema
https://github.com/Azure/azure-resource-manager-rpc/blob/master/v1.0/resource-api-reference.md#delete-resource
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from checks.accounts import arm_name
from checks.gateways.api import Json, scope_at_or_above, scope_below
from checks.times import parse_time

ROLE_ASSIGNMENTS = "/providers/microsoft.authorization/roleassignments/"
FINAL = {"succeeded", "failed"}
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def _value(field: Any) -> str:
    """`operationName`, `status`… are `{value, localizedValue}` objects; older shapes are plain strings."""
    if isinstance(field, dict):
        return str(field.get("value") or field.get("localizedValue") or "")
    return str(field or "")


def _label(field: Any) -> str:
    if isinstance(field, dict):
        return str(field.get("localizedValue") or field.get("value") or "")
    return str(field or "")


def _body(properties: dict[str, Any]) -> dict[str, Any]:
    """The request or response body Azure keeps as a JSON string in `properties` (any key case)."""
    for key, raw in properties.items():
        if key.lower() not in ("requestbody", "responsebody") or not raw:
            continue
        try:
            doc = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            continue
        if isinstance(doc, dict):
            inner = doc.get("properties")
            return inner if isinstance(inner, dict) else doc
    return {}


@cache
def builtin_role_names() -> dict[str, str]:
    """Built-in role GUID → name, from the table the product bundles (no request for a name)."""
    text = resources.files("checks").joinpath("data/builtin-roles.json").read_text(encoding="utf-8")
    return {str(r["id"]).lower(): str(r["roleName"]) for r in json.loads(text)}


@dataclass(frozen=True)
class Event:
    id: str
    at: datetime | None
    caller: str | None
    operation: str  # e.g. Microsoft.Authorization/roleAssignments/delete
    label: str  # Azure's localized operation name
    status: str
    resource_id: str
    correlation_id: str | None
    properties: dict[str, Any]
    sub_status: str = ""
    """`subStatus.value` (or `properties.statusCode`): `OK`, `Created`, `NoContent`, `Forbidden`…"""

    @property
    def op(self) -> str:
        return self.operation.lower()

    @property
    def verb(self) -> str:
        """`write`, `delete` or `action` (the operation's last segment)."""
        last = self.op.rsplit("/", 1)[-1]
        return "action" if last.endswith("action") and last != "write" else last

    @property
    def final(self) -> bool:
        return self.status.lower() in FINAL

    @property
    def succeeded(self) -> bool:
        return self.status.lower() == "succeeded"

    @property
    def removed_nothing(self) -> bool:
        """A delete answered `204 No Content`: there was nothing to delete."""
        return self.verb == "delete" and self.sub_status.replace(" ", "").lower() == "nocontent"

    @property
    def request(self) -> dict[str, Any] | None:
        """The write's request body (`properties.requestbody`), its `properties` object; None when the
        event does not carry it (Azure leaves it out of some events, and cuts long ones)."""
        raw = next((v for k, v in self.properties.items() if k.lower() == "requestbody" and v), None)
        try:
            doc = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:  # cut off: Azure shortens long bodies
            return None
        if not isinstance(doc, dict):
            return None
        inner = doc.get("properties")
        return inner if isinstance(inner, dict) else doc

    @property
    def is_role_assignment(self) -> bool:
        return self.op.startswith("microsoft.authorization/roleassignments/")

    @property
    def assignment_scope(self) -> str | None:
        """The scope of a role assignment event: its id before `/providers/Microsoft.Authorization/…`."""
        lowered = self.resource_id.lower()
        i = lowered.find(ROLE_ASSIGNMENTS)
        if i >= 0:
            return self.resource_id[:i] or "/"
        scope = _body(self.properties).get("scope")
        return str(scope) if scope else None

    @property
    def principal_id(self) -> str | None:
        value = _body(self.properties).get("principalId")
        return str(value).lower() if value else None

    @property
    def role_name(self) -> str | None:
        definition = _body(self.properties).get("roleDefinitionId")
        if not definition:
            return None
        guid = arm_name(str(definition)).lower()
        return builtin_role_names().get(guid, f"role {guid}")

    def on(self, resource_id: str) -> bool:
        """The event is on the resource or one of its children (a firewall rule, an access policy)."""
        return scope_at_or_above(resource_id, self.resource_id)

    def assigns_over(self, resource_id: str) -> bool:
        """A role assignment at the resource, its resource group or its subscription (the chain)."""
        scope = self.assignment_scope
        return bool(self.is_role_assignment and scope and scope_at_or_above(scope, resource_id))

    def below(self, resource_id: str) -> bool:
        return scope_below(self.resource_id, resource_id)


def parse(doc: Json) -> Event | None:
    """An Event from Azure's EventData; None for a document without an id or an operation."""
    event_id = doc.get("eventDataId") or doc.get("id")
    operation = _value(doc.get("operationName"))
    if not event_id or not operation:
        return None
    props = doc.get("properties")
    props = props if isinstance(props, dict) else {}
    return Event(
        id=str(event_id),
        at=parse_time(doc.get("eventTimestamp")),
        caller=str(doc["caller"]) if doc.get("caller") else None,
        operation=operation,
        label=_label(doc.get("operationName")),
        status=_value(doc.get("status")),
        resource_id=str(doc.get("resourceId") or ""),
        correlation_id=str(doc["correlationId"]) if doc.get("correlationId") else None,
        properties=props,
        sub_status=_value(doc.get("subStatus")) or str(props.get("statusCode") or ""),
    )


def noise(event: Event) -> bool:
    """Reads Azure records as actions (`listKeys/action`, SAS, connection strings): not changes."""
    parts = event.op.split("/")
    return event.verb == "action" and len(parts) >= 2 and parts[-2].startswith(("list", "read", "get"))


_WHAT: list[tuple[str, str]] = [
    ("microsoft.sql/servers/firewallrules/", "firewall rule {name}"),
    ("microsoft.sql/servers/virtualnetworkrules/", "virtual network rule {name}"),
    ("microsoft.sql/servers/administrators/", "Entra admin"),
    ("microsoft.sql/servers/azureadonlyauthentications/", "Entra-only authentication"),
    ("microsoft.synapse/workspaces/firewallrules/", "firewall rule {name}"),
    ("microsoft.keyvault/vaults/accesspolicies/", "access policy"),
    ("microsoft.storage/storageaccounts/privateendpointconnections/", "private endpoint connection {name}"),
    ("microsoft.sql/servers/privateendpointconnections/", "private endpoint connection {name}"),
    ("microsoft.storage/storageaccounts/write", "settings (network rules, public access, keys)"),
    ("microsoft.sql/servers/write", "server settings (public network access)"),
    ("microsoft.keyvault/vaults/write", "vault settings (access policies, network rules, permission model)"),
    ("microsoft.purview/accounts/write", "account settings"),
]
_VERB = {"write": "written", "delete": "deleted", "action": "run"}


def describe(event: Event, names: dict[str, str]) -> str:
    """One line: `role assignment Storage Blob Data Reader for contoso-pv deleted`.

    `names` maps lower-case principal ids to names the diagnosis already knows (Purview's identity).
    """
    done = _VERB.get(event.verb, event.verb)
    if event.removed_nothing:
        done = "deleted (it did not exist: nothing was removed)"
    if event.is_role_assignment:
        who = event.principal_id
        whom = f" for {names.get(who, who)}" if who else ""
        role = event.role_name or "(role not recorded)"
        created = "created" if event.verb == "write" else done
        return f"role assignment {role}{whom} {created}"
    for prefix, what in _WHAT:
        if event.op.startswith(prefix):
            return f"{what.format(name=arm_name(event.resource_id))} {done}"
    return event.label or event.operation
