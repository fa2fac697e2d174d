"""Role assignments, role definitions and deny assignments (Microsoft.Authorization) with ARM's scope
and filter semantics.

Role assignments: no filter = at, above and below the scope; `atScope()` = at or above only;
`principalId eq` = that object directly; `assignedTo()` = the object or any group it belongs to,
transitively (at, above and below unless `atScope()` is given too).
https://learn.microsoft.com/en-us/rest/api/authorization/role-assignments/list-for-scope

Deny assignments: no filter = at, above and below; `atScope()` = at or above; `denyAssignmentName eq`
= by display name; `principalId eq` = those listing the object in `principals`; `gdprExportPrincipalId eq`
= those listing it in `principals` or `excludePrincipals`, name and description only.
https://learn.microsoft.com/en-us/rest/api/authorization/deny-assignments/list-for-scope

Role definitions: the world's `roleDefinitions`, then the product's bundled built-ins (a world entry with
a built-in's GUID overrides it), by id at `/providers/…/roleDefinitions/{guid}` or under any scope.
"""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from aiohttp import web

from sandbox.context import Context
from sandbox.errors import ApiError, json_response
from sandbox.filters import eq_clause, query_param, split_and
from sandbox.paging import page
from sandbox.scopes import is_at_or_above, normalise
from sandbox.world import Json

_ASSIGNED_TO = re.compile(r"^assignedTo\('([^']*)'\)$", re.I)
_AT_SCOPE = re.compile(r"^atScope\(\)$", re.I)
ROLE_DEFINITIONS = "/providers/Microsoft.Authorization/roleDefinitions/"


def handle(ctx: Context, request: web.Request, scope: str, rest: str) -> web.Response:
    if request.method != "GET":
        raise ApiError(405, "UnsupportedHttpVerb", "The sandbox serves Microsoft.Authorization reads only.")
    parts = rest.strip("/").split("/")
    kind = parts[1].lower() if len(parts) > 1 else ""
    if kind == "roleassignments" and len(parts) == 2:
        return _list(ctx, request, _assignments(ctx, scope, query_param(request.query, "$filter") or ""))
    if kind == "roleassignments" and len(parts) == 3:
        return json_response(_assignment(ctx, scope, parts[2]))
    if kind == "roledefinitions" and len(parts) == 2:
        return _list(ctx, request, _definitions(ctx, scope, query_param(request.query, "$filter") or ""))
    if kind == "roledefinitions" and len(parts) == 3:
        return json_response(_definition(ctx, scope, parts[2]))
    if kind == "denyassignments" and len(parts) == 2:
        filter_text = query_param(request.query, "$filter") or ""
        return _list(ctx, request, _deny_assignments(ctx, scope, filter_text))
    if kind == "denyassignments" and len(parts) == 3:
        return json_response(_deny_assignment(ctx, scope, parts[2]))
    raise ApiError(
        400,
        "InvalidResourceType",
        f"The resource type '{'/'.join(parts[:2])}' could not be found in the namespace "
        "'Microsoft.Authorization'.",
    )


def _list(ctx: Context, request: web.Request, items: list[Json]) -> web.Response:
    chunk, next_link = page(items, request, base_url=ctx.base_url, page_size=ctx.world.page_size)
    body: dict[str, Any] = {"value": chunk}
    if next_link:
        body["nextLink"] = next_link
    return json_response(body)


# --- role assignments ----------------------------------------------------------------------------------


def _assignments(ctx: Context, scope: str, filter_text: str) -> list[Json]:
    at_scope = False
    principal_sets: list[set[str]] = []
    for clause in split_and(filter_text):
        if _AT_SCOPE.match(clause):
            at_scope = True
        elif match := _ASSIGNED_TO.match(clause):
            principal = match.group(1).lower()
            principal_sets.append({principal} | ctx.groups_of(principal))
        elif (eq := eq_clause(clause)) and eq[0].lower() == "principalid":
            principal_sets.append({eq[1].lower()})
        else:
            raise ApiError(
                400,
                "UnsupportedQuery",
                f"The filter '{filter_text}' is not supported. Supported filters are either 'atScope()' or "
                "'principalId eq '{value}'' or 'assignedTo('{value}')'.",
            )
    found = []
    for doc in ctx.world.role_assignments:
        wire = assignment_wire(ctx, doc)
        props = wire["properties"]
        where = props["scope"]
        if not (is_at_or_above(where, scope) or (not at_scope and is_at_or_above(scope, where))):
            continue
        if all(str(props["principalId"]).lower() in allowed for allowed in principal_sets):
            found.append(wire)
    return found


def _assignment(ctx: Context, scope: str, name: str) -> Json:
    for doc in ctx.world.role_assignments:
        wire = assignment_wire(ctx, doc)
        if wire["name"].lower() == name.lower() and normalise(wire["properties"]["scope"]) == normalise(
            scope
        ):
            return wire
    raise ApiError(404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found.")


def assignment_wire(ctx: Context, doc: Json) -> Json:
    """A world assignment in the full 2022-04-01 wire shape (defaults filled in, ids derived)."""
    given = doc["properties"]
    scope = "/" + str(given["scope"]).strip("/") if str(given["scope"]).strip("/") else "/"
    principal_id = str(given["principalId"])
    role = str(given["roleDefinitionId"])
    if "/" not in role:
        role = _qualified_role_id(scope, role)
    name = str(doc.get("name") or uuid.uuid5(uuid.NAMESPACE_URL, f"{scope}|{role}|{principal_id}".lower()))
    principal = ctx.principals.get(principal_id.lower())
    props: Json = {
        "roleDefinitionId": role,
        "principalId": principal_id,
        "principalType": principal.type if principal else "User",
        "scope": scope,
        "condition": None,
        "conditionVersion": None,
        "createdOn": ctx.now_iso(),
        "updatedOn": ctx.now_iso(),
        "createdBy": None,
        "updatedBy": None,
        "delegatedManagedIdentityResourceId": None,
        "description": None,
    }
    props.update(copy.deepcopy(given))
    props["roleDefinitionId"], props["scope"] = role, scope
    return {
        "id": doc.get("id")
        or f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}",
        "type": "Microsoft.Authorization/roleAssignments",
        "name": name,
        "properties": props,
    }


def _qualified_role_id(scope: str, guid: str) -> str:
    """A bare GUID in the world becomes the subscription-qualified id ARM returns."""
    parts = scope.strip("/").split("/")
    in_subscription = len(parts) >= 2 and parts[0].lower() == "subscriptions"
    prefix = f"/subscriptions/{parts[1]}" if in_subscription else ""
    return f"{prefix}{ROLE_DEFINITIONS}{guid}"


# --- role definitions ----------------------------------------------------------------------------------


def _definition(ctx: Context, scope: str, guid: str) -> Json:
    for doc in ctx.world.role_definitions:
        if str(doc["name"]).lower() == guid.lower():
            return copy.deepcopy(doc)
    builtin = ctx.builtin_roles.get(guid.lower())
    if builtin is not None:
        return builtin_wire(ctx, scope, builtin)
    raise ApiError(
        404, "RoleDefinitionDoesNotExist", f"The specified role definition with ID '{guid}' does not exist."
    )


def builtin_wire(ctx: Context, scope: str, role: Json) -> Json:
    """A bundled built-in role (`{id, roleName, permissions}`) in ARM's role definition wire shape."""
    prefix = "/" + scope.strip("/") if scope.strip("/") else ""
    return {
        "id": f"{prefix}{ROLE_DEFINITIONS}{role['id']}",
        "name": role["id"],
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": role["roleName"],
            "type": "BuiltInRole",
            "description": role.get("description", role["roleName"]),
            "assignableScopes": ["/"],
            "permissions": copy.deepcopy(role["permissions"]),
            "createdOn": "2015-02-02T21:55:09.8806423Z",
            "updatedOn": ctx.now_iso(),
            "createdBy": None,
            "updatedBy": None,
        },
    }


def _definitions(ctx: Context, scope: str, filter_text: str) -> list[Json]:
    wanted: list[tuple[str, str]] = []
    for clause in split_and(filter_text):
        eq = eq_clause(clause)
        if eq is None or eq[0].lower() not in ("rolename", "type"):
            raise ApiError(400, "UnsupportedQuery", f"The filter '{filter_text}' is not supported.")
        wanted.append((eq[0].lower(), eq[1].lower()))
    customs = [
        copy.deepcopy(d)
        for d in ctx.world.role_definitions
        if any(is_at_or_above(s, scope) for s in d["properties"].get("assignableScopes", ["/"]))
    ]
    overridden = {str(d["name"]).lower() for d in ctx.world.role_definitions}
    builtins = [
        builtin_wire(ctx, scope, r) for guid, r in ctx.builtin_roles.items() if guid not in overridden
    ]
    candidates = customs + builtins
    fields = {"rolename": "roleName", "type": "type"}
    return [
        d for d in candidates if all(str(d["properties"].get(fields[f], "")).lower() == v for f, v in wanted)
    ]


# --- deny assignments ----------------------------------------------------------------------------------

_DENY_FIELDS = ("denyassignmentname", "principalid", "gdprexportprincipalid")


def _deny_assignments(ctx: Context, scope: str, filter_text: str) -> list[Json]:
    at_scope = False
    wanted: list[tuple[str, str]] = []
    for clause in split_and(filter_text):
        if _AT_SCOPE.match(clause):
            at_scope = True
        elif (eq := eq_clause(clause)) and eq[0].lower() in _DENY_FIELDS:
            wanted.append((eq[0].lower(), eq[1].lower()))
        else:
            raise ApiError(
                400,
                "UnsupportedQuery",
                f"The filter '{filter_text}' is not supported. Supported filters are 'atScope()', "
                "'denyAssignmentName eq '{value}'', 'principalId eq '{value}'' and "
                "'gdprExportPrincipalId eq '{value}''.",
            )
    found = []
    gdpr = any(field == "gdprexportprincipalid" for field, _ in wanted)
    for doc in ctx.world.deny_assignments:
        wire = deny_wire(doc)
        props = wire["properties"]
        where = props["scope"]
        if not (is_at_or_above(where, scope) or (not at_scope and is_at_or_above(scope, where))):
            continue
        if all(_deny_matches(props, field, value) for field, value in wanted):
            found.append(_gdpr_view(wire) if gdpr else wire)
    return found


def _ids(principals: Any) -> set[str]:
    return {str(p.get("id", "")).lower() for p in principals or []}


def _deny_matches(props: Json, field: str, value: str) -> bool:
    if field == "denyassignmentname":
        return str(props.get("denyAssignmentName", "")).lower() == value
    listed = _ids(props.get("principals"))
    if field == "principalid":
        return value in listed
    return value in listed | _ids(props.get("excludePrincipals"))


def _gdpr_view(wire: Json) -> Json:
    """`gdprExportPrincipalId` answers only the name and the description."""
    props = wire["properties"]
    keep = {"denyAssignmentName": props["denyAssignmentName"], "description": props.get("description")}
    return {**{k: wire[k] for k in ("id", "type", "name")}, "properties": keep}


def _deny_assignment(ctx: Context, scope: str, name: str) -> Json:
    for doc in ctx.world.deny_assignments:
        wire = deny_wire(doc)
        if wire["name"].lower() == name.lower() and normalise(wire["properties"]["scope"]) == normalise(
            scope
        ):
            return wire
    raise ApiError(404, "DenyAssignmentNotFound", f"The deny assignment '{name}' is not found.")


def deny_wire(doc: Json) -> Json:
    """A world deny assignment in the 2022-04-01 wire shape (defaults filled in, ids derived)."""
    given = doc["properties"]
    scope = "/" + str(given["scope"]).strip("/") if str(given["scope"]).strip("/") else "/"
    name = str(
        doc.get("name") or uuid.uuid5(uuid.NAMESPACE_URL, f"deny|{scope}|{given.get('denyAssignmentName')}")
    )
    props: Json = {
        "denyAssignmentName": name,
        "description": None,
        "scope": scope,
        "doNotApplyToChildScopes": False,
        "excludePrincipals": [],
        "isSystemProtected": True,
        "condition": None,
        "conditionVersion": None,
        # not invented: a world that wants a date (a finding's `causeSince`) writes its own
        "createdOn": None,
        "updatedOn": None,
        "createdBy": None,
        "updatedBy": None,
    }
    props.update(copy.deepcopy(given))
    props["scope"] = scope
    props["permissions"] = [
        {"actions": [], "notActions": [], "dataActions": [], "notDataActions": [], **p}
        for p in props.get("permissions") or []
    ]
    return {
        "id": doc.get("id")
        or f"{scope.rstrip('/')}/providers/Microsoft.Authorization/denyAssignments/{name}",
        "type": "Microsoft.Authorization/denyAssignments",
        "name": name,
        "properties": props,
    }
