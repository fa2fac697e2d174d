"""Azure RBAC evaluation: does a principal effectively hold one action at one scope?

Decisions are made on role *definitions* (actions / notActions / dataActions / notDataActions with
wildcards), never on role names: a custom role can grant what a built-in one does, and a built-in with a
familiar name can lack it. Rules (docs `role-definitions.md`):

- `*` matches any run of characters, anywhere in the pattern; comparison is case-insensitive.
- Effective permissions of one permission block are (actions − notActions) or (dataActions −
  notDataActions). NotActions are not a deny: another block or another role granting the action wins.
- A control-plane `*` (Owner, Contributor) never grants a data action.
- Assignments at the scope or any ancestor apply (management group, subscription, resource group,
  resource); assignments to groups the principal belongs to apply (ARM's `assignedTo()` expands them).
- An assignment with an ABAC `condition` may be narrowed (e.g. to some containers): callers warn.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from checks.errors import GatewayError
from checks.facts import Facts
from checks.gateways.api import RoleAssignment, RoleDefinition

_MANAGEMENT_GROUP_PREFIX = "/providers/microsoft.management/managementgroups/"


@dataclass(frozen=True)
class Grant:
    """The outcome of evaluating one action for one principal at one scope."""

    granted: bool  # some assignment's role effectively allows the action at this scope
    conditional: bool  # every granting assignment carries an ABAC `condition` (may be narrowed)
    via: tuple[dict[str, Any], ...]  # evidence per granting assignment
    considered: tuple[dict[str, Any], ...]  # every assignment looked at (roleName, scope, principalType)

    def evidence(self) -> dict[str, Any]:
        """JSON-serialisable summary for a finding's `evidence`."""
        return {
            "granted": self.granted,
            "conditional": self.conditional,
            "via": list(self.via),
            "considered": list(self.considered),
        }


def action_matches(pattern: str, action: str) -> bool:
    """`*` wildcards anywhere (`Microsoft.Storage/*/read`, `*/read`, `*`), case-insensitive."""
    regex = ".*".join(re.escape(part) for part in pattern.strip().split("*"))
    return re.fullmatch(regex, action.strip(), flags=re.IGNORECASE) is not None


def _any_match(patterns: tuple[str, ...], action: str) -> bool:
    return any(action_matches(p, action) for p in patterns)


def allows(definition: RoleDefinition, action: str, *, data: bool) -> bool:
    """Whether the role definition grants `action` (a data action when `data`), block by block.

    notActions only subtract within their own permission block, so one block granting is enough.
    """
    for perm in definition.permissions:
        granted, removed = (
            (perm.data_actions, perm.not_data_actions) if data else (perm.actions, perm.not_actions)
        )
        if _any_match(granted, action) and not _any_match(removed, action):
            return True
    return False


def _norm_scope(scope: str) -> str:
    return "/" + scope.strip().strip("/").lower()


def scope_applies(assignment_scope: str, target_scope: str) -> bool:
    """The assignment's scope is the target scope or an ancestor of it (path prefix on segment boundaries).

    Management-group and root scopes are ancestors ARM's `atScope()` already vetted; their hierarchy is
    not visible in a resource id, so they are trusted as returned.
    """
    a, t = _norm_scope(assignment_scope), _norm_scope(target_scope)
    if a == "/" or a.startswith(_MANAGEMENT_GROUP_PREFIX):
        return True
    return t == a or t.startswith(a + "/")


def _has_condition(assignment: RoleAssignment) -> bool:
    return bool(assignment.condition and assignment.condition.strip())


def _evidence(assignment: RoleAssignment, definition: RoleDefinition | None) -> dict[str, Any]:
    return {
        "roleName": definition.role_name if definition else assignment.role_guid,
        "roleDefinitionId": assignment.role_definition_id,
        "scope": assignment.scope,
        "principalId": assignment.principal_id,
        "principalType": assignment.principal_type,
        "condition": assignment.condition,
    }


async def _definitions(
    facts: Facts, assignments: list[RoleAssignment]
) -> dict[str, RoleDefinition | GatewayError]:
    """Each distinct role definition once, concurrently; a failed lookup is kept as its error."""
    by_guid = {a.role_guid: a.role_definition_id for a in assignments}
    results = await asyncio.gather(
        *(facts.role_definition(def_id) for def_id in by_guid.values()), return_exceptions=True
    )
    out: dict[str, RoleDefinition | GatewayError] = {}
    for guid, result in zip(by_guid, results, strict=True):
        if isinstance(result, RoleDefinition | GatewayError):
            out[guid] = result
        else:  # anything else is a bug or a cancellation: do not hide it
            raise result
    return out


async def evaluate(facts: Facts, scope: str, principal_id: str, action: str, *, data: bool) -> Grant:
    """Evaluate `action` for `principal_id` at `scope` from its (inherited, group) role assignments.

    Raises GatewayError when the assignments cannot be read, or when a role definition cannot be read
    and no other assignment grants the action (a missing definition could only have added a grant).
    """
    assignments = [
        a for a in await facts.role_assignments(scope, principal_id) if scope_applies(a.scope, scope)
    ]
    definitions = await _definitions(facts, assignments)
    via: list[dict[str, Any]] = []
    considered: list[dict[str, Any]] = []
    conditions: list[bool] = []
    errors: list[GatewayError] = []
    for assignment in assignments:
        found = definitions[assignment.role_guid]
        definition = found if isinstance(found, RoleDefinition) else None
        if isinstance(found, GatewayError):
            errors.append(found)
        ev = _evidence(assignment, definition)
        considered.append({k: ev[k] for k in ("roleName", "scope", "principalType")})
        if definition is not None and allows(definition, action, data=data):
            via.append(ev)
            conditions.append(_has_condition(assignment))
    if not via and errors:
        raise errors[0]
    return Grant(
        granted=bool(via),
        conditional=bool(conditions) and all(conditions),
        via=tuple(via),
        considered=tuple(considered),
    )


def held_roles_text(grant: Grant) -> str:
    """'Reader at /subscriptions/…; Contributor at …' or 'no role assignments': for "has only" details."""
    if not grant.considered:
        return "no role assignments at this scope or above"
    return "; ".join(f"{c['roleName']} at {c['scope']}" for c in grant.considered)
