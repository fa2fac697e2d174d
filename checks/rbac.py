"""Azure RBAC evaluation: does a principal effectively hold one action at one scope?

Decisions are made on role *definitions* (actions / notActions / dataActions / notDataActions with
wildcards), never on role names: a custom role can grant what a built-in one does, and a built-in with a
familiar name can lack it. Rules (https://learn.microsoft.com/en-us/azure/role-based-access-control/role-definitions):

- `*` matches any run of characters, anywhere in the pattern; comparison is case-insensitive.
- Effective permissions of one permission block are (actions − notActions) or (dataActions −
  notDataActions). NotActions are not a deny: another block or another role granting the action wins.
- A control-plane `*` (Owner, Contributor) never grants a data action.
- Assignments at the scope or any ancestor apply (management group, subscription, resource group,
  resource); assignments to groups the principal belongs to apply (ARM's `assignedTo()` expands them).
- An assignment with an ABAC `condition` may be narrowed (e.g. to some containers): callers warn.
- An assignment on a child scope (a container, a single secret) grants on that child only: it is
  reported as `partial`, never as a grant on the whole scope.
  https://learn.microsoft.com/en-us/azure/role-based-access-control/scope-overview
- A deny assignment at the scope or an ancestor (managed applications, Blueprints, deployment stacks)
  whose principals include the identity, one of its groups or Everyone, that does not exclude it, and
  whose permissions cover the action, wins over every role grant.
  https://learn.microsoft.com/en-us/azure/role-based-access-control/deny-assignments
  Deny assignments that cannot be read leave the role grant standing, marked `deny_checked=False`.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC
from typing import Any, cast

from checks.errors import GatewayError
from checks.facts import Facts
from checks.gateways.api import (
    BUNDLED,
    EVERYONE,
    DenyAssignment,
    DenyPrincipal,
    Permission,
    RoleAssignment,
    RoleDefinition,
    scope_at_or_above,
)


@dataclass(frozen=True)
class Grant:
    """The outcome of evaluating one action for one principal at one scope."""

    granted: bool  # some assignment's role allows the action here, and no deny assignment denies it
    conditional: bool  # every granting assignment has an ABAC `condition`, or a conditional deny may apply
    via: tuple[dict[str, Any], ...]  # evidence per granting assignment (at the scope or above)
    considered: tuple[dict[str, Any], ...]  # every assignment looked at (roleName, scope, principalType)
    denied_by: tuple[dict[str, Any], ...] = ()  # deny assignments that deny it (name, scope, id[, condition])
    deny_checked: bool = False  # the deny assignments of the scope's chain were read (and matched)
    deny_unread: dict[str, Any] | None = None  # why they were not: the failed call, as evidence
    partial: tuple[dict[str, Any], ...] = ()  # grants on child scopes only (roleName, scope, …)

    def evidence(self) -> dict[str, Any]:
        """JSON-serialisable summary for a finding's `evidence`."""
        out: dict[str, Any] = {
            "granted": self.granted,
            "conditional": self.conditional,
            "via": list(self.via),
            "considered": list(self.considered),
            "deniedBy": list(self.denied_by),
            "denyChecked": self.deny_checked,
            "partial": list(self.partial),
        }
        if not self.deny_checked:
            out["denyUnread"] = self.deny_unread
        return out

    @property
    def denied(self) -> bool:
        """An unconditional deny assignment denies the action (whatever `via` holds)."""
        return any(not d.get("condition") for d in self.denied_by)


def action_matches(pattern: str, action: str) -> bool:
    """`*` wildcards anywhere (`Microsoft.Storage/*/read`, `*/read`, `*`), case-insensitive."""
    regex = ".*".join(re.escape(part) for part in pattern.strip().split("*"))
    return re.fullmatch(regex, action.strip(), flags=re.IGNORECASE) is not None


def _any_match(patterns: tuple[str, ...], action: str) -> bool:
    return any(action_matches(p, action) for p in patterns)


def _block_allows(perm: Permission, action: str, *, data: bool) -> bool:
    granted, removed = (
        (perm.data_actions, perm.not_data_actions) if data else (perm.actions, perm.not_actions)
    )
    return _any_match(granted, action) and not _any_match(removed, action)


def allows(definition: RoleDefinition, action: str, *, data: bool) -> bool:
    """Whether the role definition grants `action` (a data action when `data`), block by block.

    notActions only subtract within their own permission block, so one block granting is enough.
    """
    return any(_block_allows(perm, action, data=data) for perm in definition.permissions)


def _norm_scope(scope: str) -> str:
    return "/" + scope.strip().strip("/").lower()


def scope_applies(assignment_scope: str, target_scope: str) -> bool:
    """The assignment's scope is the target scope or an ancestor of it (path prefix on segment boundaries).

    Management-group and root scopes are ancestors ARM's `atScope()` already vetted; their hierarchy is
    not visible in a resource id, so they are trusted as returned.
    """
    return scope_at_or_above(assignment_scope, target_scope)


def _has_condition(assignment: RoleAssignment) -> bool:
    return bool(assignment.condition and assignment.condition.strip())


def _evidence(assignment: RoleAssignment, definition: RoleDefinition | None) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "roleName": definition.role_name if definition else assignment.role_guid,
        "roleDefinitionId": assignment.role_definition_id,
        "scope": assignment.scope,
        "principalId": assignment.principal_id,
        "principalType": assignment.principal_type,
        "condition": assignment.condition,
    }
    if definition is not None:
        ev["definitionSource"] = definition.source
    return ev


def _considered(ev: dict[str, Any]) -> dict[str, Any]:
    out = {k: ev[k] for k in ("roleName", "scope", "principalType")}
    if ev.get("definitionSource") == BUNDLED:  # ARM refused the built-in: judged on the bundled copy
        out["definitionSource"] = BUNDLED
    return out


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


# --- deny assignments -------------------------------------------------------------------------------


def _deny_covers(deny: DenyAssignment, action: str, *, data: bool) -> tuple[bool, bool]:
    """(some block denies the action, some such block is unconditional)."""
    blocks = [p for p in deny.permissions if _block_allows(p, action, data=data)]
    unconditional = [p for p in blocks if not (deny.condition or p.condition)]
    return bool(blocks), bool(unconditional)


def _deny_reaches(deny: DenyAssignment, scope: str) -> bool:
    """At the scope, or at an ancestor unless it is limited to its own scope (`doNotApplyToChildScopes`)."""
    if not scope_applies(deny.scope, scope):
        return False
    return not deny.do_not_apply_to_child_scopes or _norm_scope(deny.scope) == _norm_scope(scope)


def _may_be_group(p: DenyPrincipal) -> bool:
    return p.id.lower() != EVERYONE and (p.type or "").lower() not in (
        "user",
        "serviceprincipal",
        "systemdefined",
    )


def _deny_targets(deny: DenyAssignment, principal_id: str, groups: frozenset[str] | None) -> bool | None:
    """Whether the deny assignment applies to the principal; None when only its groups could tell."""
    me = principal_id.lower()
    listed = {p.id.lower() for p in deny.principals}
    excluded = {p.id.lower() for p in deny.exclude_principals}
    if groups is not None:
        mine = groups | {me}
        if mine & excluded:
            return False
        return bool((mine | {EVERYONE}) & listed)
    if me in excluded:
        return False
    if me in listed or EVERYONE in listed:
        # an excluded group could hold the principal: only its membership can tell
        return None if any(_may_be_group(p) for p in deny.exclude_principals) else True
    return None if any(_may_be_group(p) for p in deny.principals) else False


def _deny_evidence(deny: DenyAssignment, *, conditional: bool) -> dict[str, Any]:
    ev: dict[str, Any] = {"name": deny.name, "scope": deny.scope, "id": deny.id}
    if deny.description:  # names the owner: a managed application, a blueprint, a deployment stack
        ev["description"] = deny.description
    if deny.is_system_protected is not None:
        ev["isSystemProtected"] = deny.is_system_protected
    if deny.created_on is not None:  # since when it denies (a run after it cannot have been refused by it)
        when = deny.created_on if deny.created_on.tzinfo else deny.created_on.replace(tzinfo=UTC)
        ev["createdOn"] = when.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if conditional:
        conditions = [deny.condition, *(p.condition for p in deny.permissions)]
        ev["condition"] = "; ".join(c for c in conditions if c) or "conditional"
    return ev


async def _read_denies(facts: Facts, scope: str) -> list[DenyAssignment] | GatewayError:
    try:
        return await facts.deny_assignments(scope)
    except GatewayError as exc:
        return exc


@dataclass(frozen=True)
class _Denial:
    hard: tuple[DenyAssignment, ...]  # deny the action outright
    soft: tuple[DenyAssignment, ...]  # deny it under an ABAC condition: may apply
    checked: bool
    unread: dict[str, Any] | None


async def _denial(
    facts: Facts,
    read: list[DenyAssignment] | GatewayError,
    scope: str,
    principal_id: str,
    action: str,
    *,
    data: bool,
) -> _Denial:
    if isinstance(read, GatewayError):
        return _Denial((), (), checked=False, unread=read.as_evidence())
    covering = []
    for deny in read:
        covers, unconditional = _deny_covers(deny, action, data=data)
        if covers and _deny_reaches(deny, scope):
            covering.append((deny, unconditional))
    decided = [(d, u, _deny_targets(d, principal_id, None)) for d, u in covering]
    unread: dict[str, Any] | None = None
    if any(t is None for _, _, t in decided):
        groups: frozenset[str] | None = None
        try:  # Microsoft Graph transitiveMemberOf; without its permission the deny stays unmatched
            groups = frozenset(g.lower() for g in await facts.transitive_group_ids(principal_id))
        except GatewayError as exc:
            unread = exc.as_evidence()
        if groups is not None:
            decided = [(d, u, _deny_targets(d, principal_id, groups)) for d, u, _ in decided]
    hard = tuple(d for d, u, t in decided if t and u)
    soft = tuple(d for d, u, t in decided if t and not u)
    return _Denial(hard, soft, checked=unread is None, unread=unread)


async def evaluate(facts: Facts, scope: str, principal_id: str, action: str, *, data: bool) -> Grant:
    """Evaluate `action` for `principal_id` at `scope` from its (inherited, group) role assignments, its
    child-scope assignments (reported as `partial`) and the deny assignments of the scope's chain.

    Raises GatewayError when the assignments cannot be read, or when a role definition cannot be read
    and no other assignment grants the action (a missing definition could only have added a grant) and
    no deny assignment denies it anyway. Deny assignments that cannot be read never raise.
    """
    results = await asyncio.gather(
        facts.role_assignments(scope, principal_id),
        facts.role_assignments_below(scope, principal_id),
        _read_denies(facts, scope),
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, GatewayError):
            raise result
    inherited_read, below_read, deny_read = results
    if isinstance(inherited_read, GatewayError):
        raise inherited_read
    inherited = [a for a in cast("list[RoleAssignment]", inherited_read) if scope_applies(a.scope, scope)]
    below = [] if isinstance(below_read, GatewayError) else cast("list[RoleAssignment]", below_read)
    denies = cast("list[DenyAssignment] | GatewayError", deny_read)

    definitions, denial = await asyncio.gather(
        _definitions(facts, inherited + below),
        _denial(facts, denies, scope, principal_id, action, data=data),
    )
    via: list[dict[str, Any]] = []
    considered: list[dict[str, Any]] = []
    conditions: list[bool] = []
    errors: list[GatewayError] = []
    for assignment in inherited:
        found = definitions[assignment.role_guid]
        definition = found if isinstance(found, RoleDefinition) else None
        if isinstance(found, GatewayError):
            errors.append(found)
        ev = _evidence(assignment, definition)
        considered.append(_considered(ev))
        if definition is not None and allows(definition, action, data=data):
            via.append(ev)
            conditions.append(_has_condition(assignment))
    if not via and errors and not denial.hard:
        raise errors[0]

    # a deny that reaches the scope and is not limited to it reaches its children too
    children_denied = any(not d.do_not_apply_to_child_scopes for d in denial.hard)
    partial: list[dict[str, Any]] = []
    for assignment in below if not children_denied else []:
        found = definitions[assignment.role_guid]
        if isinstance(found, RoleDefinition) and allows(found, action, data=data):
            ev = _evidence(assignment, found)
            partial.append({k: v for k, v in ev.items() if k != "roleDefinitionId"})

    denied_by = tuple(
        [_deny_evidence(d, conditional=False) for d in denial.hard]
        + [_deny_evidence(d, conditional=True) for d in denial.soft]
    )
    granted = bool(via) and not denial.hard
    conditional = granted and ((bool(conditions) and all(conditions)) or bool(denial.soft))
    return Grant(
        granted=granted,
        conditional=conditional,
        via=tuple(via),
        considered=tuple(considered),
        denied_by=denied_by,
        deny_checked=denial.checked,
        deny_unread=denial.unread,
        partial=tuple(partial),
    )


def held_roles_text(grant: Grant) -> str:
    """'Reader at /subscriptions/…; Contributor at …' or 'no role assignments': for "has only" details.

    A deny assignment that overrides the roles is named after them.
    """
    if not grant.considered:
        text = "no role assignments at this scope or above"
    else:
        text = "; ".join(f"{c['roleName']} at {c['scope']}" for c in grant.considered)
    if denial := denial_text(grant):
        text += f"; {denial}"
    return text


def denial_text(grant: Grant) -> str | None:
    """'denied by deny assignment "X" at /subscriptions/…' (which wins over any role), or None."""
    hard = [d for d in grant.denied_by if not d.get("condition")]
    if not hard:
        return None
    names = ", ".join(f'"{d["name"]}" at {d["scope"]}' for d in hard)
    return f"denied by deny assignment {names} (a deny assignment wins over every role assignment)"


def partial_text(grant: Grant) -> str | None:
    """'Storage Blob Data Reader at …/containers/raw' for grants on child scopes only, or None."""
    if not grant.partial:
        return None
    return "; ".join(f"{p['roleName']} at {p['scope']}" for p in grant.partial)
