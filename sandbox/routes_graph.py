"""Microsoft Graph at `/graph/{v1.0|beta}/…`: service principals by app id and users by UPN or id."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sandbox.context import Context
from sandbox.errors import ApiError, json_response
from sandbox.filters import eq_clauses, query_param
from sandbox.paging import page
from sandbox.world import Json, Principal

GRAPH = "https://graph.microsoft.com"
_BY_APP_ID = re.compile(r"^servicePrincipals\(appId='([^']*)'\)$", re.I)
_SP_FIELDS = {"appid": "appId", "displayname": "displayName", "id": "id"}
_USER_FIELDS = {
    "userprincipalname": "userPrincipalName",
    "mail": "mail",
    "displayname": "displayName",
    "id": "id",
}


async def handle(ctx: Context, request: web.Request) -> web.Response:
    parts = request.path.rstrip("/").split("/")[2:]  # /graph/v1.0/… → ['v1.0', …]
    if not parts or parts[0] not in ("v1.0", "beta") or request.method != "GET":
        raise ApiError(400, "BadRequest", f"Invalid version or method for '{request.path}'.")
    version, rest = parts[0], parts[1:]
    context = f"{GRAPH}/{version}/$metadata"
    sps = [p for p in ctx.world.principals if p.type == "ServicePrincipal"]
    users = [p for p in ctx.world.principals if p.type == "User"]
    if rest and rest[0].lower() == "serviceprincipals":
        if len(rest) == 1:
            found = _filtered(request, [_service_principal(p) for p in sps], _SP_FIELDS)
            return _list(ctx, request, found, f"{context}#servicePrincipals")
        if len(rest) == 2:
            return json_response(
                _one(sps, rest[1], _service_principal, f"{context}#servicePrincipals/$entity")
            )
    if len(rest) == 1 and (match := _BY_APP_ID.match(rest[0])):
        app_id = match.group(1).lower()
        found_sp = next((p for p in sps if (p.app_id or "").lower() == app_id), None)
        if found_sp is None:
            raise _not_found(match.group(1))
        return json_response(
            {"@odata.context": f"{context}#servicePrincipals/$entity", **_service_principal(found_sp)}
        )
    if rest and rest[0].lower() == "users":
        if len(rest) == 1:
            found = _filtered(request, [_user(p) for p in users], _USER_FIELDS)
            return _list(ctx, request, found, f"{context}#users")
        if len(rest) == 2:
            return json_response(_one(users, rest[1], _user, f"{context}#users/$entity"))
    raise ApiError(400, "BadRequest", f"Resource not found for the segment '{'/'.join(rest)}'.")


def _not_found(key: str) -> ApiError:
    return ApiError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
    )


def _one(principals: list[Principal], key: str, shape: Callable[[Principal], Json], context: str) -> Json:
    wanted = key.lower()
    for p in principals:
        if wanted in (p.id.lower(), (p.user_principal_name or "").lower()):
            body: Json = {"@odata.context": context, **shape(p)}
            return body
    raise _not_found(key)


def _filtered(request: web.Request, items: list[Json], fields: dict[str, str]) -> list[Json]:
    text = query_param(request.query, "$filter") or ""
    clauses = eq_clauses(text)
    if clauses is None or any(name.lower() not in fields for name, _ in clauses):
        raise ApiError(400, "Request_UnsupportedQuery", f"Unsupported query: '{text}'.")
    return [
        item
        for item in items
        if all(str(item.get(fields[name.lower()]) or "").lower() == value.lower() for name, value in clauses)
    ]


def _list(ctx: Context, request: web.Request, items: list[Json], context: str) -> web.Response:
    chunk, next_link = page(items, request, base_url=ctx.base_url, page_size=ctx.world.page_size)
    body: dict[str, Any] = {"@odata.context": context, "value": chunk}
    if next_link:
        body["@odata.nextLink"] = next_link
    return json_response(body)


def _service_principal(p: Principal) -> Json:
    return {
        "id": p.id,
        "appId": p.app_id,
        "displayName": p.display_name,
        "servicePrincipalType": "ManagedIdentity" if p.app_id is None else "Application",
        "accountEnabled": True,
    }


def _user(p: Principal) -> Json:
    return {
        "id": p.id,
        "displayName": p.display_name,
        "userPrincipalName": p.user_principal_name,
        "mail": p.mail,
        "businessPhones": [],
        "givenName": None,
        "surname": None,
        "jobTitle": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "mobilePhone": None,
    }
