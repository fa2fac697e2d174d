"""Microsoft Graph at `/graph/{v1.0|beta}/…`: directory objects of the world, read-only.

- `servicePrincipals` (list with `$filter`, by id, by `(appId='…')`), `users` (list, by id or UPN),
  `groups` (list, by id), `applications` (list with `$filter=appId eq '…'`, by id, by `(appId='…')`);
  `$select` is honoured (an unknown property is Graph's 400).
- `{servicePrincipals|users|groups}/{id}/memberOf` and `/transitiveMemberOf`, optionally cast with
  `/microsoft.graph.group`, answered from `principals[].memberOf` (transitively for the latter), paged.
- App registrations: a service principal whose `servicePrincipalType` is `Application` (the default when
  it has an appId) has an `application` object; its `passwordCredentials` / `keyCredentials` are served
  there, as Entra keeps a client secret on the app registration. Other service principals (managed
  identities) carry their credentials on the service principal itself.

Errors are Graph's bodies (`error.code`, `innerError.date` / `request-id`), 404 `Request_ResourceNotFound`
for an unknown object, 400 `Request_UnsupportedQuery` / `BadRequest` for what Graph refuses; a 403
(`Authorization_RequestDenied`) comes from a world fault.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from sandbox.context import Context
from sandbox.errors import ApiError, json_response
from sandbox.filters import eq_clauses, query_param
from sandbox.paging import page
from sandbox.world import Json, Principal

GRAPH = "https://graph.microsoft.com"
_BY_APP_ID = re.compile(r"^(servicePrincipals|applications)\(appId='((?:[^']|'')*)'\)$", re.I)
_MEMBERSHIP = {"memberof": "memberOf", "transitivememberof": "transitiveMemberOf"}
GROUP_CAST = "microsoft.graph.group"
# Casts Graph accepts on a membership collection; the world has no directory roles or units: empty.
_OTHER_CASTS = ("microsoft.graph.directoryrole", "microsoft.graph.administrativeunit")

Shape = Callable[[Context, Principal], Json]


async def handle(ctx: Context, request: web.Request) -> web.Response:
    parts = request.path.rstrip("/").split("/")[2:]  # /graph/v1.0/… → ['v1.0', …]
    if not parts or parts[0] not in ("v1.0", "beta") or request.method != "GET":
        raise ApiError(400, "BadRequest", f"Invalid version or method for '{request.path}'.")
    version, rest = parts[0], parts[1:]
    metadata = f"{GRAPH}/{version}/$metadata"
    if len(rest) == 1 and (match := _BY_APP_ID.match(rest[0])):
        collection = _COLLECTIONS[match.group(1).lower()]
        app_id = match.group(2).replace("''", "'").lower()
        found = next((p for p in collection.members(ctx) if (p.app_id or "").lower() == app_id), None)
        if found is None:
            raise _not_found(match.group(2))
        return _entity(request, collection, collection.shape(ctx, found), metadata)
    if not rest or rest[0].lower() not in _COLLECTIONS:
        raise _no_segment(rest)
    collection = _COLLECTIONS[rest[0].lower()]
    if len(rest) == 1:
        items = [collection.shape(ctx, p) for p in collection.members(ctx)]
        found_items = _filtered(request, items, collection.filterable)
        return _list(ctx, request, found_items, collection, metadata)
    principal = _one(collection.members(ctx), rest[1])
    if len(rest) == 2:
        return _entity(request, collection, collection.shape(ctx, principal), metadata)
    if rest[2].lower() in _MEMBERSHIP and collection.name != "applications" and len(rest) <= 4:
        cast = rest[3].lower() if len(rest) == 4 else None
        return _memberships(ctx, request, principal, rest[2].lower(), cast, metadata)
    raise _no_segment(rest[2:])


# --- collections -----------------------------------------------------------------------------------


class _Collection:
    def __init__(
        self,
        name: str,
        entity: str,
        members: Callable[[Context], list[Principal]],
        shape: Shape,
        filterable: dict[str, str],
    ) -> None:
        self.name = name
        self.entity = entity
        self.members = members
        self.shape = shape
        self.filterable = filterable
        """lower-case property → its name, for `$filter=NAME eq '…'`."""


def _of_type(kind: str) -> Callable[[Context], list[Principal]]:
    return lambda ctx: [p for p in ctx.world.principals if p.type == kind]


def _applications(ctx: Context) -> list[Principal]:
    return [p for p in ctx.world.principals if p.has_application]


def sp_type(p: Principal) -> str:
    return p.service_principal_type or ("ManagedIdentity" if p.app_id is None else "Application")


def service_principal(ctx: Context, p: Principal) -> Json:
    on_sp = not p.has_application  # an app registration holds its own credentials
    return {
        "id": p.id,
        "appId": p.app_id,
        "displayName": p.display_name,
        "servicePrincipalType": sp_type(p),
        "accountEnabled": True,
        "appOwnerOrganizationId": ctx.world.tenant_id if p.has_application else None,
        "passwordCredentials": list(p.password_credentials) if on_sp else [],
        "keyCredentials": list(p.key_credentials) if on_sp else [],
    }


def application_object_id(p: Principal) -> str:
    """The app registration's own object id (not the service principal's): stable, derived from appId."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"graph:application:{(p.app_id or '').lower()}"))


def application(ctx: Context, p: Principal) -> Json:
    return {
        "id": application_object_id(p),
        "appId": p.app_id,
        "displayName": p.display_name,
        "signInAudience": "AzureADMyOrg",
        "publisherDomain": None,
        "createdDateTime": None,
        "deletedDateTime": None,
        "passwordCredentials": list(p.password_credentials),
        "keyCredentials": list(p.key_credentials),
    }


def user(ctx: Context, p: Principal) -> Json:
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


def group(ctx: Context, p: Principal) -> Json:
    return _group_doc(p.id, p.display_name)


def _group_doc(group_id: str, display_name: str | None) -> Json:
    return {
        "id": group_id,
        "displayName": display_name,
        "description": None,
        "securityEnabled": True,
        "mailEnabled": False,
        "mail": None,
        "groupTypes": [],
    }


_ID_NAME = {"id": "id", "displayname": "displayName"}
_COLLECTIONS: dict[str, _Collection] = {
    "serviceprincipals": _Collection(
        "servicePrincipals",
        "servicePrincipal",
        _of_type("ServicePrincipal"),
        service_principal,
        {**_ID_NAME, "appid": "appId", "serviceprincipaltype": "servicePrincipalType"},
    ),
    "applications": _Collection(
        "applications", "application", _applications, application, {**_ID_NAME, "appid": "appId"}
    ),
    "users": _Collection(
        "users",
        "user",
        _of_type("User"),
        user,
        {**_ID_NAME, "userprincipalname": "userPrincipalName", "mail": "mail"},
    ),
    "groups": _Collection("groups", "group", _of_type("Group"), group, dict(_ID_NAME)),
}


# --- answers ---------------------------------------------------------------------------------------


def _not_found(key: str) -> ApiError:
    return ApiError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
    )


def _no_segment(rest: Sequence[str]) -> ApiError:
    return ApiError(400, "BadRequest", f"Resource not found for the segment '{'/'.join(rest)}'.")


def _one(principals: list[Principal], key: str) -> Principal:
    """By object id, or (users) by UPN; applications by their own object id."""
    wanted = key.lower()
    for p in principals:
        ids = {p.id.lower(), (p.user_principal_name or "").lower()}
        if p.has_application:
            ids.add(application_object_id(p))
        if wanted in ids:
            return p
    raise _not_found(key)


def _selected(request: web.Request, template: Json, entity: str) -> list[str] | None:
    """The `$select` properties, as the type spells them (Graph's 400 for one the type does not have);
    None without `$select`."""
    text = query_param(request.query, "$select")
    if not text:
        return None
    names = {k.lower(): k for k in template if not k.startswith("@")}
    chosen: list[str] = []
    for raw in (s.strip() for s in text.split(",")):
        if raw and raw.lower() not in names:
            raise ApiError(
                400,
                "BadRequest",
                f"Could not find a property named '{raw}' on type 'microsoft.graph.{entity}'.",
            )
        if raw and names[raw.lower()] not in chosen:
            chosen.append(names[raw.lower()])
    return chosen


def _cut(doc: Json, selected: list[str] | None) -> Json:
    """`doc` with only the selected properties (and its `@odata.*` annotations)."""
    if selected is None:
        return doc
    return {k: v for k, v in doc.items() if k.startswith("@") or k in selected}


def _context(metadata: str, collection: str, selected: list[str] | None, suffix: str = "") -> str:
    return f"{metadata}#{collection}" + (f"({','.join(selected)})" if selected else "") + suffix


def _entity(request: web.Request, collection: _Collection, doc: Json, metadata: str) -> web.Response:
    selected = _selected(request, doc, collection.entity)
    context = _context(metadata, collection.name, selected, "/$entity")
    return json_response({"@odata.context": context, **_cut(doc, selected)})


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


def _list(
    ctx: Context, request: web.Request, items: list[Json], collection: _Collection, metadata: str
) -> web.Response:
    selected = _selected(request, collection.shape(ctx, _TEMPLATE), collection.entity)
    shaped = [_cut(item, selected) for item in items]
    return _paged(ctx, request, shaped, _context(metadata, collection.name, selected))


_TEMPLATE = Principal(id="", type="ServicePrincipal", display_name="", app_id="")
"""Any principal: a collection's shape of it names the properties `$select` may ask for."""


def _paged(ctx: Context, request: web.Request, items: list[Json], context: str) -> web.Response:
    chunk, next_link = page(items, request, base_url=ctx.base_url, page_size=ctx.world.page_size)
    body: dict[str, Any] = {"@odata.context": context, "value": chunk}
    if next_link:
        body["@odata.nextLink"] = next_link
    return json_response(body)


def group_ids(ctx: Context, principal: Principal, *, transitive: bool) -> list[str]:
    """The groups a principal is in, in a stable order (breadth first); cycles are harmless."""
    seen: list[str] = []
    pending = list(principal.member_of)
    while pending:
        current = pending.pop(0)
        if current.lower() in (s.lower() for s in seen):
            continue
        seen.append(current)
        inner = ctx.principals.get(current.lower())
        if transitive and inner is not None:
            pending.extend(inner.member_of)
    return seen


def _memberships(
    ctx: Context, request: web.Request, principal: Principal, relation: str, cast: str | None, metadata: str
) -> web.Response:
    if cast is not None and cast != GROUP_CAST and cast not in _OTHER_CASTS:
        raise _no_segment([cast])
    ids = (
        group_ids(ctx, principal, transitive=relation == "transitivememberof")
        if cast in (None, GROUP_CAST)
        else []
    )
    docs: list[Json] = []
    for gid in ids:
        known = ctx.principals.get(gid.lower())
        doc = _group_doc(gid, known.display_name if known else None)
        if cast is None:  # a directoryObject collection says each item's type
            doc = {"@odata.type": "#microsoft.graph.group", **doc}
        docs.append(doc)
    selected = _selected(request, _group_doc("", None), "group")
    context = _context(metadata, "groups" if cast else "directoryObjects", selected)
    return _paged(ctx, request, [_cut(d, selected) for d in docs], context)
