"""Azure Resource Manager at the root path: subscriptions, resource groups, resources and their lists.

Role assignments/definitions and Policy Insights live under `{scope}/providers/…` too; they are handed to
their own modules here, at the last `/providers/` segment, as ARM routes them.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from aiohttp import web

from sandbox import routes_policy, routes_rbac
from sandbox.context import Context
from sandbox.errors import ApiError, json_response
from sandbox.paging import page
from sandbox.scopes import normalise, resource_parts, split_provider
from sandbox.world import Json

_SUBSCRIPTION = re.compile(r"^/subscriptions/([^/]+)$", re.I)
_RESOURCE_GROUPS = re.compile(r"^/subscriptions/([^/]+)/resourcegroups$", re.I)
_RESOURCE_GROUP = re.compile(r"^/subscriptions/([^/]+)/resourcegroups/([^/]+)$", re.I)


async def handle(ctx: Context, request: web.Request) -> web.Response:
    path = request.path.rstrip("/") or "/"
    provider = split_provider(path)
    if provider is not None:
        scope, rest = provider
        namespace = rest.split("/", 1)[0].lower()
        if namespace == "microsoft.authorization":
            return routes_rbac.handle(ctx, request, scope, rest)
        if namespace == "microsoft.policyinsights":
            return await routes_policy.handle(ctx, request, scope, rest)
    if request.method != "GET":
        raise ApiError(
            405, "UnsupportedHttpVerb", f"The HTTP verb '{request.method}' is not supported by the sandbox."
        )
    if path.lower() == "/subscriptions":
        subs = [_subscription(ctx, sid) for sid in ctx.subscriptions]
        return _list(ctx, request, subs, count=True)
    if match := _SUBSCRIPTION.match(path):
        _require_subscription(ctx, match.group(1))
        return json_response(_subscription(ctx, match.group(1)))
    if match := _RESOURCE_GROUPS.match(path):
        _require_subscription(ctx, match.group(1))
        prefix = normalise(path) + "/"
        groups = [_resource_group(ctx, key) for key in ctx.resource_groups if key.startswith(prefix)]
        return _list(ctx, request, groups, count=False)
    if match := _RESOURCE_GROUP.match(path):
        _require_subscription(ctx, match.group(1))
        _require_group(ctx, match.group(1), match.group(2))
        return json_response(_resource_group(ctx, normalise(path)))
    if provider is None:
        raise ApiError(
            400, "InvalidRequestUri", f"The request URI '{path}' is not a valid Azure resource path."
        )
    scope, rest = provider
    if len(rest.strip("/").split("/")) % 2 == 1:
        return json_response(_resource(ctx, path))
    return _list(ctx, request, _resources_of_type(ctx, scope, rest), count=False)


def serve_resource(ctx: Context, resource: Json) -> Json:
    """The wire copy of a world resource: a Key Vault's `vaultUri` points at the sandbox."""
    if str(resource.get("type", "")).lower() == "microsoft.keyvault/vaults":
        return ctx.with_vault_urls(resource, "properties", "vaultUri")
    return copy.deepcopy(resource)


def _list(ctx: Context, request: web.Request, items: list[Json], *, count: bool) -> web.Response:
    chunk, next_link = page(items, request, base_url=ctx.base_url, page_size=ctx.world.page_size)
    body: dict[str, Any] = {"value": chunk}
    if next_link:
        body["nextLink"] = next_link
    if count:
        body["count"] = {"type": "Total", "value": len(items)}
    return json_response(body)


def _subscription(ctx: Context, subscription_id: str) -> Json:
    return {
        "id": f"/subscriptions/{subscription_id}",
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": subscription_id,
        "tenantId": ctx.world.tenant_id,
        "displayName": ctx.subscription_name(subscription_id),
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
    }


def _resource_group(ctx: Context, key: str) -> Json:
    group = ctx.resource_groups[key]
    return {
        "id": f"/subscriptions/{group.subscription_id}/resourceGroups/{group.name}",
        "name": group.name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": group.location,
        "properties": {"provisioningState": "Succeeded"},
    }


def _require_subscription(ctx: Context, subscription_id: str) -> None:
    if subscription_id.lower() not in ctx.subscriptions:
        raise ApiError(
            404, "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found."
        )


def _require_group(ctx: Context, subscription_id: str, group: str) -> None:
    if normalise(f"/subscriptions/{subscription_id}/resourceGroups/{group}") not in ctx.resource_groups:
        raise ApiError(404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found.")


def _resource(ctx: Context, path: str) -> Json:
    found = ctx.resources.get(normalise(path))
    if found is not None:
        return serve_resource(ctx, found)
    parts = resource_parts(path)
    if parts is None:
        raise ApiError(404, "ResourceNotFound", f"The Resource '{path}' was not found.")
    sub, group, _ = parts
    _require_subscription(ctx, sub)
    _require_group(ctx, sub, group)
    provider = split_provider(path)
    rest = provider[1] if provider else path
    raise ApiError(
        404,
        "ResourceNotFound",
        f"The Resource '{rest}' under resource group '{group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def _resources_of_type(ctx: Context, scope: str, rest: str) -> list[Json]:
    """Resources listed by `{scope}/providers/{NS}/{type}[/{name}/{child}…]`, anywhere under `scope`."""
    scope_key = normalise(scope)
    collection = rest.strip("/").lower()
    if match := _SUBSCRIPTION.match(scope):
        _require_subscription(ctx, match.group(1))
    elif match := _RESOURCE_GROUP.match(scope):
        _require_subscription(ctx, match.group(1))
        _require_group(ctx, match.group(1), match.group(2))
    if collection.count("/") > 1:
        parent = f"{scope_key}/providers/{collection.rsplit('/', 1)[0]}"
        if parent not in ctx.resources:
            raise ApiError(
                404, "ParentResourceNotFound", f"Failed to perform 'read' on resource(s) '{parent}'."
            )
    found = []
    for key, resource in ctx.resources.items():
        split = split_provider(key)
        if split is None:
            continue
        item_scope, item_rest = split
        if item_rest.rsplit("/", 1)[0] != collection:
            continue
        if item_scope == scope_key or item_scope.startswith(scope_key + "/"):
            found.append(serve_resource(ctx, resource))
    return found
