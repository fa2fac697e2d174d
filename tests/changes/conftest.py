"""What changed, through the real wire: the sandbox serving a world's Activity Log, the product's clients."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from checks.diagnose import diagnose
from checks.facts import Facts
from checks.model import Report
from checks.registry import CATALOGUE
from sandbox import Sandbox
from tests.sandbox.conftest import product_clients as clients

__all__ = ["DOCS", "WRITTEN", "clients", "diagnosed", "event"]

WRITTEN = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
"""The sample's own `now`: worlds are loaded rebased to it, and diagnosed at it."""
DOCS = "https://learn.microsoft.com/en-us/purview/troubleshoot-connections"


async def diagnosed(sandbox: Sandbox, source: str, *, account: str = "contoso-pv", **kw: Any) -> Report:
    """One diagnosis of `source` by the product's own clients, at the sample's clock."""
    async with clients(sandbox) as azure:
        facts = Facts(azure.gateways(account), account)
        return await diagnose(facts, source, checks=CATALOGUE, docs_base=DOCS, now=WRITTEN, **kw)


def event(
    key: str,
    operation: str,
    resource_id: str,
    when: str,
    *,
    caller: str = "bob@contoso.com",
    status: str = "Succeeded",
    group: str | None = None,
    **properties: Any,
) -> dict[str, Any]:
    """An Activity Log EventData in Azure's shape (the fields the service sends, trimmed)."""
    provider = operation.split("/", 1)[0]
    return {
        "eventDataId": f"00000000-0000-4000-8000-{key.rjust(12, '0')}",
        "correlationId": f"11111111-0000-4000-8000-{key.rjust(12, '0')}",
        "caller": caller,
        "operationName": {"value": operation, "localizedValue": operation},
        "status": {"value": status, "localizedValue": status},
        "eventTimestamp": when,
        "resourceId": resource_id,
        "resourceGroupName": group or resource_id.split("/")[4],
        "resourceProviderName": {"value": provider, "localizedValue": provider},
        "subscriptionId": resource_id.split("/")[2],
        "properties": properties,
    }
