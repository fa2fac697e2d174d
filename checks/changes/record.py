"""One entry of a report's "What changed" list, as data (each output renders it separately)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

ACTIVITY_LOG = "activity-log"
RESOURCE_CHANGE = "resource-change"
"""A property change Azure recorded (`Microsoft.Resources/changes`) with no Activity Log event to tell."""
SECRET_VERSION = "secret-version"
UNKNOWN = "unknown"
"""A read that gave no answer (refused, failed): one line, never a failed report."""

SUCCEEDED = "Succeeded"
FAILED = "Failed"


def iso(when: datetime | None) -> str | None:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z") if when else None


@dataclass(frozen=True)
class PropertyChange:
    """One property before → after (`Microsoft.Resources/changes`): `properties.networkAcls.defaultAction`."""

    property: str
    before: str | None
    after: str | None
    kind: str = "Update"  # Insert, Update or Remove
    by: str | None = None  # changeCategory: User or System

    def to_json(self) -> dict[str, Any]:
        return {
            "property": self.property,
            "before": self.before,
            "after": self.after,
            "kind": self.kind,
            "category": self.by,
        }

    def text(self) -> str:
        name = self.property.removeprefix("properties.")
        if self.kind == "Insert":
            return f"{name} added: {self.after}"
        if self.kind == "Remove":
            return f"{name} removed (was {self.before})"
        return f"{name}: {self.before} → {self.after}"


@dataclass(frozen=True, kw_only=True)
class Change:
    """A change on a resource the diagnosis read, or why the changes of a scope could not be read.

    `status` is Azure's operation status: `Failed` ones are kept only where worth knowing ("attempted").
    `likely_trigger` marks a change that removed or narrowed what the failing `finding` needs, made after
    the last success and before the first failure.
    """

    kind: str
    summary: str
    at: datetime | None = None
    resource_id: str | None = None
    resource: str | None = None
    operation: str | None = None
    status: str = SUCCEEDED
    caller: str | None = None
    caller_name: str | None = None
    event_id: str | None = None
    correlation_id: str | None = None
    likely_trigger: bool = False
    finding: str | None = None
    scan: str | None = None
    reason: str | None = None
    relation: str | None = None
    """e.g. "8 h before the first failed run": said relative to the runs, for a person."""
    permission: str | None = None
    """For `unknown`: what the bot's identity needs to read it."""
    properties: tuple[PropertyChange, ...] = ()
    """Before → after of the properties the checks read, where Azure recorded them."""

    @property
    def key(self) -> str:
        """The event's `eventDataId`, or the resource and time of a change without one."""
        return self.event_id or f"{self.resource_id}@{iso(self.at)}"

    @property
    def attempted(self) -> bool:
        return self.kind == ACTIVITY_LOG and self.status != SUCCEEDED

    @property
    def who(self) -> str:
        return self.caller_name or self.caller or "an unknown caller"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "time": iso(self.at),
            "resourceId": self.resource_id,
            "resource": self.resource,
            "operation": self.operation,
            "status": self.status,
            "caller": self.caller,
            "callerName": self.caller_name,
            "summary": self.summary,
            "eventDataId": self.event_id,
            "correlationId": self.correlation_id,
            "likelyTrigger": self.likely_trigger,
            "finding": self.finding,
            "scan": self.scan,
            "reason": self.reason,
            "relation": self.relation,
            "permission": self.permission,
            "propertyChanges": [p.to_json() for p in self.properties],
        }
