"""ARM scope arithmetic: which scopes are at, above or below another, by path segments, case-insensitive.

An assignment at `/subscriptions/s` applies to everything under it; nested resource types
(`…/servers/s1/databases/db`) and extension scopes are just longer paths, so a segment-prefix test covers
them. Management-group scopes are treated as above every subscription (the world has no group hierarchy).
"""

from __future__ import annotations

MANAGEMENT_GROUP_PREFIX = "/providers/microsoft.management/managementgroups/"


def normalise(scope: str) -> str:
    """Lower case, leading slash, no trailing slash; the root scope is ``""``."""
    text = scope.strip().strip("/").lower()
    return f"/{text}" if text else ""


def segments(scope: str) -> list[str]:
    text = normalise(scope)
    return text[1:].split("/") if text else []


def is_at_or_above(candidate: str, scope: str) -> bool:
    """True when an assignment at `candidate` applies to `scope` (same scope or an ancestor)."""
    cand, target = normalise(candidate), normalise(scope)
    if cand.startswith(MANAGEMENT_GROUP_PREFIX):
        return cand == target or target.startswith("/subscriptions/")
    if target.startswith(MANAGEMENT_GROUP_PREFIX):
        return cand == ""
    cand_parts, target_parts = segments(cand), segments(target)
    return target_parts[: len(cand_parts)] == cand_parts


def split_provider(path: str) -> tuple[str, str] | None:
    """`{scope}/providers/{rest}` at the *last* `/providers/` → (scope, rest), or None."""
    lower = path.lower()
    index = lower.rfind("/providers/")
    if index < 0:
        return None
    return path[:index], path[index + len("/providers/") :]


def resource_parts(resource_id: str) -> tuple[str, str, str] | None:
    """`/subscriptions/s/resourceGroups/rg/…` → (subscription, resource group, id) or None."""
    parts = resource_id.strip("/").split("/")
    if len(parts) >= 4 and parts[0].lower() == "subscriptions" and parts[2].lower() == "resourcegroups":
        return parts[1], parts[3], resource_id
    return None
