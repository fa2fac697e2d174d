"""Read what changed on the resources a diagnosis touches, concurrently with the checks.

Resources: the source (a SQL database's server is its resource id), the Key Vaults its credentials use,
the Purview account and its managed storage. One Activity Log read per resource group they live in (it
holds the resource, its children and role assignments at the resource and the group) and one per
subscription for `Microsoft.Authorization` (role assignments at the subscription). Every read goes
through `Facts`, so what the checks already read (runs, account, vaults, secret versions) is not read again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from checks.accounts import arm_name
from checks.changes.events import GUID, Event, describe, noise, parse
from checks.changes.properties import ResourceChange, narrowed_by, top_level
from checks.changes.properties import parse as parse_resource_change
from checks.changes.record import ACTIVITY_LOG, RESOURCE_CHANGE, SECRET_VERSION, UNKNOWN, Change
from checks.changes.triggers import REFINED, SECRET_CHECKS, narrowed_checks
from checks.changes.window import Window, window
from checks.errors import GatewayError
from checks.facts import Facts
from checks.gateways.api import Json
from checks.gateways.monitor import NOT_CONFIGURED, RESOURCE_GROUP, RESOURCE_PROVIDER, ActivityLogQuery
from checks.secret_refs import VaultSecret, collect
from checks.target import Target

log = logging.getLogger(__name__)

AUTHORIZATION = "Microsoft.Authorization"
RECENT = timedelta(days=14)
"""Read at once, before the runs set the window: most windows (since the last success) fall inside."""


@dataclass(frozen=True)
class Touched:
    resource_id: str
    role: str  # "source", "key vault", "Purview account", "managed storage"


@dataclass(frozen=True)
class ChangeSet:
    """The window, what changed in it (not yet correlated with findings) and the names known."""

    window: Window
    changes: tuple[Change, ...] = ()
    touched: tuple[Touched, ...] = ()
    identities: frozenset[str] = field(default_factory=frozenset)
    """Lower-case object ids of the identities the scans use (Purview's), for role assignment events."""
    narrows: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """eventDataId (or a secret version's id) → the checks whose needs the change removed or narrowed."""


def subscription_of(resource_id: str) -> str | None:
    parts = resource_id.strip("/").split("/")
    return parts[1] if len(parts) >= 2 and parts[0].lower() == "subscriptions" else None


def resource_group_of(resource_id: str) -> str | None:
    parts = resource_id.strip("/").split("/")
    return parts[3] if len(parts) >= 4 and parts[2].lower() == "resourcegroups" else None


def queries(touched: list[Touched], start: datetime, end: datetime) -> list[ActivityLogQuery]:
    """Distinct reads: a resource group's events, and each subscription's role assignment events."""
    found: dict[tuple[str, ...], ActivityLogQuery] = {}
    for item in touched:
        sub = subscription_of(item.resource_id)
        if sub is None:
            continue
        group = resource_group_of(item.resource_id)
        asks = [ActivityLogQuery(sub, start, end, RESOURCE_PROVIDER, AUTHORIZATION)]
        if group:
            asks.append(ActivityLogQuery(sub, start, end, RESOURCE_GROUP, group))
        for ask in asks:
            found.setdefault(ask.key, ask)
    return list(found.values())


def relevant(event: Event, touched: list[Touched]) -> Touched | None:
    """The touched resource the event changed, or whose role-assignment chain it changed."""
    return next((t for t in touched if event.on(t.resource_id) or event.assigns_over(t.resource_id)), None)


async def _runs(target: Target) -> dict[str, list[Json]]:
    async def one(scan: str) -> list[Json]:
        try:
            return await target.facts.runs(target.source_name, scan)
        except GatewayError:
            return []

    names = [str(s.get("name", "")) for s in target.scans]
    return dict(zip(names, await asyncio.gather(*(one(n) for n in names)), strict=True))


async def _account(facts: Facts) -> Json | None:
    try:
        return await facts.account()
    except GatewayError:  # the checks report it; the timeline reads what it can
        return None


def _account_resources(account: Json | None) -> list[Touched]:
    if not account or not account.get("id"):
        return []
    found = [Touched(str(account["id"]), "Purview account")]
    managed = (account.get("properties") or {}).get("managedResources") or {}
    if isinstance(managed, dict) and managed.get("storageAccount"):
        found.append(Touched(str(managed["storageAccount"]), "managed storage"))
    return found


def _unknown(ask: ActivityLogQuery, error: GatewayError) -> Change:
    return Change(
        kind=UNKNOWN,
        summary=f"could not {ask.label()}: {error.reason}",
        status="Unknown",
        permission=error.permission,
    )


async def _read(facts: Facts, ask: ActivityLogQuery) -> list[Json] | Change:
    try:
        return await facts.activity_log(ask)
    except GatewayError as error:
        if error.code == NOT_CONFIGURED:  # no monitor wired (a stand-in): nothing to say, not a refusal
            return []
        return _unknown(ask, error)


def _change(event: Event, item: Touched, names: dict[str, str]) -> Change:
    return Change(
        kind=ACTIVITY_LOG,
        summary=describe(event, names),
        at=event.at,
        resource_id=event.resource_id,
        resource=arm_name(item.resource_id),
        operation=event.operation,
        status="Succeeded" if event.succeeded else "Failed",
        caller=event.caller,
        event_id=event.id,
        correlation_id=event.correlation_id,
    )


def events_to_changes(
    pages: list[list[Json]],
    touched: list[Touched],
    win: Window,
    names: dict[str, str],
    narrows: dict[str, tuple[str, ...]],
    roles: dict[str, str] | None = None,
) -> list[Change]:
    """Final events on the touched resources inside the window, each `eventDataId` once; fills `narrows`
    with what each succeeded one may have broken (and `roles` with the touched resource's role)."""
    seen: set[str] = set()
    out: list[Change] = []
    started = _started_requests(pages)
    for doc in (d for page in pages for d in page):
        event = parse(doc)
        if event is None or event.id in seen or not event.final or noise(event):
            continue
        if event.at is None or not win.start <= event.at <= win.end:
            continue
        item = relevant(event, touched)
        if item is None:
            continue
        seen.add(event.id)
        out.append(_change(event, item, names))
        if roles is not None:
            roles[out[-1].key] = item.role
        request = started.get(_operation_key(event)) if event.request is None else None
        checks = narrowed_checks(event, item.role, frozenset(names), request=request)
        if checks:
            narrows[out[-1].key] = checks
    return out


def _operation_key(event: Event) -> tuple[str, str, str]:
    return ((event.correlation_id or "").lower(), event.op, event.resource_id.lower().rstrip("/"))


def _started_requests(pages: list[list[Json]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Request bodies by operation (correlation id, operation, resource): Azure keeps a write's
    `requestbody` on its `Started` (BeginRequest) event more often than on the final one."""
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for doc in (d for page in pages for d in page):
        event = parse(doc)
        if event is None or event.final or not event.correlation_id:
            continue
        body = event.request
        if body is not None:
            found.setdefault(_operation_key(event), body)
    return found


async def _secret_versions(facts: Facts, secrets: list[VaultSecret], win: Window) -> list[Change]:
    """Versions created in the window of the secrets the scans use (their properties, never a value)."""

    async def one(secret: VaultSecret) -> list[Change]:
        try:
            versions = await facts.secret_versions(secret.base_url, secret.ref.secret_name)
        except GatewayError:  # key-vault-secret reports the refusal itself
            return []
        return [
            Change(
                kind=SECRET_VERSION,
                summary=f"new version {v.version[:8]} of secret {secret.ref.secret_name}",
                at=v.created,
                resource_id=f"{secret.vault_id}/secrets/{secret.ref.secret_name}",
                resource=secret.vault_name,
                operation="secret version created",
                scan=secret.scan,
            )
            for v in versions
            if v.created is not None and win.start < v.created <= win.end
        ]

    unique = {(s.base_url.lower(), s.ref.secret_name.lower()): s for s in secrets}
    found = await asyncio.gather(*(one(s) for s in unique.values()))
    return [c for changes in found for c in changes]


async def _vault_secrets(target: Target) -> list[VaultSecret]:
    outcomes = await collect(target.facts, target.scans)
    return [s for o in outcomes for s in o.secrets]


async def _caller_names(facts: Facts, changes: list[Change]) -> list[Change]:
    """App ids resolved to service principal names through Graph, when Graph answers."""
    app_ids = {c.caller for c in changes if c.caller and GUID.match(c.caller)}

    async def name(app_id: str) -> tuple[str, str | None]:
        try:
            sp = await facts.service_principal_by_app_id(app_id)
        except GatewayError:
            return app_id, None
        return app_id, (str(sp.get("displayName")) if sp and sp.get("displayName") else None)

    resolved = dict(await asyncio.gather(*(name(a) for a in sorted(app_ids))))
    return [replace(c, caller_name=resolved[c.caller]) if c.caller in resolved else c for c in changes]


@dataclass
class _Wave:
    """The changes found on some touched resources, once their ids are known."""

    touched: list[Touched]
    changes: list[Change] = field(default_factory=list)
    unknowns: list[Change] = field(default_factory=list)
    narrows: dict[str, tuple[str, ...]] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    """change key → the role of the touched resource it is on (to read its property changes)."""
    properties: list[ResourceChange] = field(default_factory=list)


async def _property_changes(facts: Facts, touched: list[Touched]) -> list[ResourceChange]:
    """`Microsoft.Resources/changes` of the touched top-level resources. Optional: a refusal or a
    failure leaves the Activity Log alone to answer."""

    async def one(item: Touched) -> list[Json]:
        try:
            return await facts.resource_changes(item.resource_id)
        except GatewayError as error:
            log.info("no property changes for %s: %s", item.resource_id, error.reason)
            return []

    wanted = [t for t in touched if top_level(t.resource_id)]
    pages = await asyncio.gather(*(one(t) for t in wanted))
    parsed = (parse_resource_change(doc) for page in pages for doc in page)
    return [p for p in parsed if p is not None]


async def _wave(
    facts: Facts,
    known: Awaitable[list[Touched]],
    win: Awaitable[Window],
    names: Awaitable[dict[str, str]],
    now: datetime,
) -> _Wave:
    """Read as soon as the resources are known (the source's at once, the vaults' after the
    credentials), so no read waits for an unrelated one; the memo makes shared reads one request.

    The last `RECENT` days are read at once, without waiting for the runs that set the window (most
    windows start later: the events before it are dropped here); only a window reaching further back
    reads its older part once the runs are known. Property changes need no window (14 days, filtered).
    """
    wave = _Wave(await known)
    properties = asyncio.ensure_future(_property_changes(facts, wave.touched))
    recent_start = now - RECENT
    recent = asyncio.ensure_future(_gather_reads(facts, queries(wave.touched, recent_start, now)))
    window_ = await win
    older = queries(wave.touched, window_.start, recent_start) if window_.start < recent_start else []
    newer, older_results = await asyncio.gather(recent, _gather_reads(facts, older))
    results = newer + older_results
    wave.unknowns = [r for r in results if isinstance(r, Change)]
    pages = [r for r in results if not isinstance(r, Change)]
    found = events_to_changes(pages, wave.touched, window_, await names, wave.narrows, wave.roles)
    wave.changes = await _caller_names(facts, found)
    wave.properties = await properties
    return wave


def _role_of(resource_id: str, touched: list[Touched]) -> str:
    return next((t.role for t in touched if t.resource_id.lower() == resource_id.lower()), "")


def merge_properties(
    changes: dict[str, Change],
    properties: list[ResourceChange],
    touched: list[Touched],
    win: Window,
    narrows: dict[str, tuple[str, ...]],
    roles: dict[str, str],
) -> list[Change]:
    """Each property change told on the Activity Log write that made it (same correlation id), which it
    then decides the trigger of (a write that touched only tags explains nothing); the others, in the
    window and on a property the checks read, as changes of their own."""
    by_correlation: dict[str, Change] = {
        c.correlation_id.lower(): c for c in changes.values() if c.correlation_id and c.kind == ACTIVITY_LOG
    }
    alone: list[Change] = []
    for found in {p.id or f"{p.target}@{p.at}": p for p in properties}.values():
        told = by_correlation.get((found.correlation_id or "").lower())
        if told is not None:
            merged = replace(told, properties=told.properties + found.properties)
            changes[told.key] = by_correlation[(found.correlation_id or "").lower()] = merged
            adds = (told.resource_id or "").lower().rstrip("/").endswith("/accesspolicies/add")
            if not told.attempted and not adds and told.operation and told.operation.lower() in REFINED:
                # what Azure recorded the write changed decides, over what its request body asked
                narrows[told.key] = narrowed_by(merged.properties, roles.get(told.key, ""))
            continue
        if not found.properties or found.at is None or not win.start <= found.at <= win.end:
            continue
        more = f" and {len(found.properties) - 1} more" if len(found.properties) > 1 else ""
        system = any(p.by == "System" for p in found.properties)
        change = Change(
            kind=RESOURCE_CHANGE,
            summary=f"{found.properties[0].text()}{more}",
            at=found.at,
            resource_id=found.target,
            resource=arm_name(found.target),
            operation=f"{found.change_type} (Microsoft.Resources/changes)",
            caller_name="Azure" if system else None,
            event_id=found.id or None,
            correlation_id=found.correlation_id,
            properties=found.properties,
        )
        checks = narrowed_by(found.properties, _role_of(found.target, touched))
        if checks:
            narrows[change.key] = checks
        alone.append(change)
    return alone


async def read_changes(target: Target, *, days: int | None = None) -> ChangeSet:
    """Every change in the window on the resources the diagnosis touches; never raises a GatewayError
    (a read that gives no answer is one `unknown` entry)."""
    facts = target.facts
    account = asyncio.ensure_future(_account(facts))
    secrets = asyncio.ensure_future(_vault_secrets(target))

    async def span() -> Window:
        return window(await _runs(target), target.now, days=days)

    async def source() -> list[Touched]:
        return [Touched(target.resource_id, "source")] if target.resource_id else []

    async def of_account() -> list[Touched]:
        return _account_resources(await account)

    async def vaults() -> list[Touched]:
        return [Touched(s.vault_id, "key vault") for s in await secrets if s.vault_id]

    async def names() -> dict[str, str]:
        found = await account
        principal = str(((found or {}).get("identity") or {}).get("principalId") or "").lower()
        return {principal: str((found or {}).get("name") or facts.account_name)} if principal else {}

    named = asyncio.ensure_future(names())
    win_task = asyncio.ensure_future(span())
    waves = await asyncio.gather(
        *(_wave(facts, known(), win_task, named, target.now) for known in (source, of_account, vaults))
    )
    win = await win_task
    versions = await _secret_versions(facts, await secrets, win)
    changes: dict[str, Change] = {}
    narrows: dict[str, tuple[str, ...]] = {v.key: SECRET_CHECKS for v in versions}
    roles: dict[str, str] = {}
    for wave in waves:  # the source's first: a change on it is told as the source's
        for change in wave.changes:
            changes.setdefault(change.key, change)
        for key, checks in wave.narrows.items():  # a subscription-wide delete narrows every chain
            narrows[key] = tuple(dict.fromkeys(narrows.get(key, ()) + checks))
        for key, role in wave.roles.items():
            roles.setdefault(key, role)
    touched = [t for w in waves for t in w.touched]
    properties = [p for w in waves for p in w.properties]
    alone = merge_properties(changes, properties, touched, win, narrows, roles)
    unknowns = list({u.summary: u for w in waves for u in w.unknowns}.values())
    return ChangeSet(
        window=win,
        changes=tuple(_one_unknown(unknowns) + list(changes.values()) + alone + versions),
        touched=tuple(touched),
        identities=frozenset(await named),
        narrows=narrows,
    )


def _one_unknown(unknowns: list[Change]) -> list[Change]:
    """Refused reads as one line, naming every scope that could not be read."""
    if len(unknowns) <= 1:
        return unknowns
    first = unknowns[0]
    more = "; ".join(u.summary.removeprefix("could not ") for u in unknowns[1:])
    return [replace(first, summary=f"{first.summary}; also {more}")]


async def _gather_reads(facts: Facts, asks: list[ActivityLogQuery]) -> list[list[Json] | Change]:
    return list(await asyncio.gather(*(_read(facts, a) for a in asks)))
