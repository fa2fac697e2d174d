"""What one diagnosis is about: the data source, its scans, and the identity each scan uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from checks.facts import Facts
from checks.gateways.api import Json


@dataclass(frozen=True)
class Target:
    """Handed to every check: the source's and scans' wire JSON plus the shared facts."""

    facts: Facts
    source: Json
    scans: list[Json]
    now: datetime
    # the user principal name of the person asking (their Slack email, used as their Entra UPN), when known
    requester_upn: str | None = None

    @property
    def account_name(self) -> str:
        return self.facts.account_name

    @property
    def source_name(self) -> str:
        return str(self.source.get("name", ""))

    @property
    def source_kind(self) -> str:
        return str(self.source.get("kind", ""))

    @property
    def source_props(self) -> dict[str, Any]:
        props = self.source.get("properties")
        return props if isinstance(props, dict) else {}

    @property
    def resource_id(self) -> str | None:
        rid = self.source_props.get("resourceId")
        return str(rid) if rid else None
