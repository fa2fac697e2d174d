"""Policy Insights: the latest policy states of a resource (or of everything under a subscription/group)."""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from sandbox.context import Context
from sandbox.errors import ApiError, json_response
from sandbox.filters import eq_clauses, query_param
from sandbox.paging import page
from sandbox.scopes import is_at_or_above, normalise, resource_parts, split_provider
from sandbox.world import Json


async def handle(ctx: Context, request: web.Request, scope: str, rest: str) -> web.Response:
    parts = rest.strip("/").split("/")
    if (
        len(parts) != 4
        or parts[1].lower() != "policystates"
        or parts[2].lower() not in ("latest", "default")
        or parts[3].lower() != "queryresults"
    ):
        raise ApiError(
            400,
            "InvalidResourceType",
            f"The resource type '{'/'.join(parts[1:])}' could not be found in the namespace "
            "'Microsoft.PolicyInsights'.",
        )
    if request.method != "POST":
        raise ApiError(405, "UnsupportedHttpVerb", f"The HTTP verb '{request.method}' is not supported.")
    filter_text = query_param(request.query, "$filter") or ""
    clauses = eq_clauses(filter_text)
    if clauses is None:
        raise ApiError(
            400,
            "InvalidFilterInQueryString",
            f"The $filter '{filter_text}' is not supported: use `field eq 'value'` clauses joined by 'and'.",
        )
    context_url = f"{ctx.base_url}{scope}/providers/Microsoft.PolicyInsights/policyStates/$metadata#latest"
    rows = [
        _row(ctx, state, context_url)
        for state in ctx.world.policy_states
        if _in_scope(state["resourceId"], scope) and _matches(state, clauses)
    ]
    top = query_param(request.query, "$top")
    if top is not None:
        if not top.isdigit():
            raise ApiError(400, "InvalidQueryParameterValue", f"The value '{top}' of $top is not valid.")
        rows = rows[: int(top)]
    chunk, next_link = page(rows, request, base_url=ctx.base_url, page_size=ctx.world.page_size)
    body: dict[str, Any] = {
        "@odata.context": context_url,
        "@odata.count": len(chunk),
        "value": chunk,
        "@odata.nextLink": next_link,
    }
    return json_response(body)


def _in_scope(resource_id: str, scope: str) -> bool:
    """A resource scope means that resource; a subscription or group scope means everything under it."""
    if split_provider(scope) is not None:
        return normalise(resource_id) == normalise(scope)
    return is_at_or_above(scope, resource_id)


def _matches(state: Json, clauses: list[tuple[str, str]]) -> bool:
    fields = {k.lower(): v for k, v in state.items()}
    return all(str(fields.get(name.lower(), "")).lower() == value.lower() for name, value in clauses)


def _row(ctx: Context, state: Json, context_url: str) -> Json:
    row: Json = {"@odata.id": None, "@odata.context": f"{context_url}/$entity", "timestamp": ctx.now_iso()}
    resource_id = str(state["resourceId"])
    parts = resource_parts(resource_id)
    provider = split_provider(resource_id)
    if parts is not None:
        row["subscriptionId"], row["resourceGroup"] = parts[0], parts[1]
    if provider is not None:
        tail = provider[1].split("/")
        row["resourceType"] = "/".join([tail[0], *tail[1::2]])
    compliance = str(state.get("complianceState", ""))
    if compliance:
        row["isCompliant"] = compliance.lower() == "compliant"
    row.update(copy.deepcopy(state))
    return row
