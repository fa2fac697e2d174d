"""The world file: a YAML list of Azure's own wire documents, loaded and checked once into typed records.

Validation happens here so a typo in a scenario fails at load time with the path of the bad entry, not as a
puzzling 404 in the middle of a test. Documents stay as wire JSON (dicts) because that is what is served.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from sandbox.rebase import shift_document, shift_for

Json = dict[str, Any]

PRINCIPAL_TYPES = ("ServicePrincipal", "User", "Group", "ForeignGroup")
DEFAULT_PAGE_SIZE = 100


class WorldError(ValueError):
    """The world file is malformed; the message names the offending entry."""


@dataclass(frozen=True)
class Principal:
    id: str
    type: str
    display_name: str
    app_id: str | None = None
    user_principal_name: str | None = None
    mail: str | None = None
    member_of: tuple[str, ...] = ()
    service_principal_type: str | None = None
    """Graph's `servicePrincipalType` (world key of the same name); default `Application` with an appId."""
    password_credentials: tuple[Json, ...] = ()
    """Graph `passwordCredential`s (client secrets: keyId, displayName, hint, startDateTime, endDateTime)."""
    key_credentials: tuple[Json, ...] = ()
    """Graph `keyCredential`s (certificates: keyId, displayName, type, usage, startDateTime, endDateTime)."""

    @property
    def has_application(self) -> bool:
        """An app registration (Graph `application`) here: a service principal of type Application."""
        return (
            self.type == "ServicePrincipal"
            and self.app_id is not None
            and (self.service_principal_type or "Application") == "Application"
        )


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    display_name: str


@dataclass(frozen=True)
class SecretVersionSpec:
    """One version of a Key Vault secret as the world describes it (times as unix seconds).

    `deleted_date` (world key `deletedDate`) marks the secret soft-deleted: Key Vault deletes a secret with
    all its versions, so either every version of a secret carries it or none does.
    """

    version: str
    attributes: Json
    content_type: str | None = None
    tags: Json = field(default_factory=dict)
    deleted_date: int | None = None


@dataclass(frozen=True)
class PurviewAccount:
    name: str
    data_sources: list[Json]
    scans: dict[str, list[Json]]
    runs: dict[str, list[Json]]
    credentials: list[Json]
    azure_key_vaults: list[Json]
    integration_runtimes: list[Json]
    integration_runtime_status: dict[str, Json]
    managed_private_endpoints: dict[str, list[Json]]
    collections: list[Json] = field(default_factory=list)
    """The account data plane's collections (world key `collections`): name, parentCollection…"""
    triggers: dict[str, Json] = field(default_factory=dict)
    """Each scan's schedule (world key `triggers`, `DATASOURCE/SCAN` → Trigger JSON), `…/triggers/default`."""


@dataclass(frozen=True)
class FaultSpec:
    """Fault injection: requests whose `path?query` matches `path` fail (or are delayed)."""

    path: re.Pattern[str]
    status: int | None = None
    retry_after: float | None = None
    times: int | None = None
    delay_ms: float = 0.0
    method: str | None = None
    code: str | None = None
    """Error code in the body; default: the plane's usual code for the status."""
    inner_code: str | None = None
    """`error.innererror.code` (e.g. Key Vault's ForbiddenByRbac)."""


@dataclass(frozen=True)
class World:
    tenant_id: str
    now: datetime | None = None
    principals: tuple[Principal, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    resources: tuple[Json, ...] = ()
    role_definitions: tuple[Json, ...] = ()
    role_assignments: tuple[Json, ...] = ()
    deny_assignments: tuple[Json, ...] = ()
    policy_states: tuple[Json, ...] = ()
    activity_log: tuple[Json, ...] = ()
    """Azure Monitor Activity Log `EventData` objects (world key `activityLog`), served with its filters."""
    resource_changes: tuple[Json, ...] = ()
    """`Microsoft.Resources/changes` resources (world key `resourceChanges`): before → after of properties."""
    key_vaults: Mapping[str, Mapping[str, tuple[SecretVersionSpec, ...]]] = field(default_factory=dict)
    purview: Mapping[str, PurviewAccount] = field(default_factory=dict)
    faults: tuple[FaultSpec, ...] = ()
    page_size: int = DEFAULT_PAGE_SIZE
    shift: timedelta = timedelta(0)
    """How far `load_world` moved every time of the file (whole seconds); zero when not rebased."""

    @property
    def accounts(self) -> list[str]:
        return list(self.purview)


RebaseTo = datetime | Literal["now"] | None


def load_world(
    source: str | os.PathLike[str] | Mapping[str, Any] | None = None, *, rebase_to: RebaseTo = "now"
) -> World:
    """Load a world from a YAML path, an already parsed mapping, or (None) the bundled sample tenant.

    A world with a `now` is rebased: every time in it moves by (`rebase_to` − `now`), in whole seconds,
    so it reads as of that moment (see `sandbox.rebase`). `rebase_to="now"` (the default, what the
    product's `demo`, `check --sandbox` and `serve --sandbox` get) is the wall clock at load; a datetime is
    a fixed clock (deterministic tests of "as of" behaviour); None keeps the file's own times (tests that
    assert the dates written in a world file).
    """
    if source is None:
        text = (resources.files("sandbox") / "worlds" / "sample.yaml").read_text(encoding="utf-8")
        raw: Any = yaml.safe_load(text)
    elif isinstance(source, Mapping):
        raw = dict(source)
    else:
        raw = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise WorldError("the world must be a mapping at the top level")
    return _rebased(_plain(raw), rebase_to)


def _rebased(raw: Json, rebase_to: RebaseTo) -> World:
    """Parse `raw`, first moving its times to `rebase_to` when it has a `now` (worlds without stay put)."""
    if rebase_to is None or raw.get("now") is None:
        return parse_world(raw)
    written_now = _parse_time(raw["now"], "now")
    target = rebase_to if isinstance(rebase_to, datetime) else datetime.now(UTC)
    delta = shift_for(written_now, target)
    world = parse_world(shift_document(raw, delta))
    return replace(world, shift=delta)


def parse_world(raw: Json) -> World:
    tenant = raw.get("tenantId")
    if not isinstance(tenant, str) or not tenant:
        raise WorldError("tenantId: required string")
    page_size = raw.get("pageSize", DEFAULT_PAGE_SIZE)
    if not isinstance(page_size, int) or page_size < 1:
        raise WorldError("pageSize: must be a positive integer")
    return World(
        tenant_id=tenant,
        now=_parse_time(raw["now"], "now") if raw.get("now") is not None else None,
        principals=tuple(_principal(p, f"principals[{i}]") for i, p in enumerate(_list(raw, "principals"))),
        subscriptions=tuple(
            _subscription(s, f"subscriptions[{i}]") for i, s in enumerate(_list(raw, "subscriptions"))
        ),
        resources=tuple(_resource(r, f"resources[{i}]") for i, r in enumerate(_list(raw, "resources"))),
        role_definitions=tuple(
            _role_definition(d, f"roleDefinitions[{i}]") for i, d in enumerate(_list(raw, "roleDefinitions"))
        ),
        role_assignments=tuple(
            _role_assignment(a, f"roleAssignments[{i}]") for i, a in enumerate(_list(raw, "roleAssignments"))
        ),
        deny_assignments=tuple(
            _deny_assignment(d, f"denyAssignments[{i}]") for i, d in enumerate(_list(raw, "denyAssignments"))
        ),
        policy_states=tuple(
            _require(s, f"policyStates[{i}]", "resourceId") for i, s in enumerate(_list(raw, "policyStates"))
        ),
        activity_log=tuple(
            _require(e, f"activityLog[{i}]", "eventDataId", "eventTimestamp")
            for i, e in enumerate(_list(raw, "activityLog"))
        ),
        resource_changes=tuple(
            _require(c, f"resourceChanges[{i}]", "id") for i, c in enumerate(_list(raw, "resourceChanges"))
        ),
        key_vaults=_key_vaults(raw.get("keyVaults") or {}),
        purview={
            name: _purview_account(name, acc)
            for name, acc in _mapping(raw.get("purview") or {}, "purview").items()
        },
        faults=tuple(_fault(f, f"faults[{i}]") for i, f in enumerate(_list(raw, "faults"))),
        page_size=page_size,
    )


def parse_fault(raw: Mapping[str, Any]) -> FaultSpec:
    """Public for `Sandbox.add_fault`, which takes the same mapping as a world file entry."""
    return _fault(_plain(dict(raw)), "fault")


def to_unix(value: Any, where: str) -> int:
    """Key Vault wants unix seconds; world files may say either that or an ISO time."""
    if isinstance(value, bool):
        raise WorldError(f"{where}: expected a time, got {value!r}")
    if isinstance(value, int | float):
        return int(value)
    return int(_parse_time(value, where).timestamp())


# --- helpers -------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """YAML turns unquoted timestamps into datetimes: make them ISO strings so documents stay JSON."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _parse_time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise WorldError(f"{where}: expected an ISO time string, got {value!r}")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise WorldError(f"{where}: not an ISO time: {value!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _list(raw: Json, key: str) -> list[Any]:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise WorldError(f"{key}: expected a list")
    return value


def _mapping(value: Any, where: str) -> Json:
    if not isinstance(value, dict):
        raise WorldError(f"{where}: expected a mapping")
    return value


def _require(value: Any, where: str, *keys: str) -> Json:
    doc = _mapping(value, where)
    for key in keys:
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise WorldError(f"{where}: missing string '{key}'")
    return doc


def _principal(value: Any, where: str) -> Principal:
    doc = _require(value, where, "id", "type")
    if doc["type"] not in PRINCIPAL_TYPES:
        raise WorldError(f"{where}: type must be one of {', '.join(PRINCIPAL_TYPES)}")
    member_of = doc.get("memberOf") or []
    if not isinstance(member_of, list) or not all(isinstance(g, str) for g in member_of):
        raise WorldError(f"{where}: memberOf must be a list of group ids")
    sp_type = doc.get("servicePrincipalType")
    if sp_type is not None and (doc["type"] != "ServicePrincipal" or not isinstance(sp_type, str)):
        raise WorldError(f"{where}: servicePrincipalType is a string, for a ServicePrincipal only")
    return Principal(
        id=doc["id"],
        type=doc["type"],
        display_name=str(doc.get("displayName") or doc["id"]),
        app_id=doc.get("appId"),
        user_principal_name=doc.get("userPrincipalName"),
        mail=doc.get("mail"),
        member_of=tuple(member_of),
        service_principal_type=sp_type,
        password_credentials=_credentials(doc, "passwordCredentials", where, _PASSWORD_CREDENTIAL),
        key_credentials=_credentials(doc, "keyCredentials", where, _KEY_CREDENTIAL),
    )


# Graph's passwordCredential and keyCredential with every property (null when the world omits it); the
# secret text and the key itself are never served. https://learn.microsoft.com/graph/api/resources/passwordcredential
_PASSWORD_CREDENTIAL = ("customKeyIdentifier", "displayName", "endDateTime", "hint", "keyId", "secretText",
                        "startDateTime")  # fmt: skip
_KEY_CREDENTIAL = ("customKeyIdentifier", "displayName", "endDateTime", "key", "keyId", "startDateTime",
                   "type", "usage")  # fmt: skip
_NEVER_SERVED = ("secretText", "key")


def _credentials(doc: Json, key: str, where: str, fields: tuple[str, ...]) -> tuple[Json, ...]:
    items = doc.get(key) or []
    if not isinstance(items, list):
        raise WorldError(f"{where}.{key}: expected a list")
    out: list[Json] = []
    for i, item in enumerate(items):
        spot = f"{where}.{key}[{i}]"
        cred = _require(item, spot, "keyId")
        for time_key in ("startDateTime", "endDateTime"):
            if cred.get(time_key) is not None:
                _parse_time(cred[time_key], f"{spot}.{time_key}")
        full = {name: None for name in fields} | {k: v for k, v in cred.items() if k not in _NEVER_SERVED}
        if key == "keyCredentials":
            full["type"] = full["type"] or "AsymmetricX509Cert"
            full["usage"] = full["usage"] or "Verify"
        out.append(full)
    return tuple(out)


def _subscription(value: Any, where: str) -> Subscription:
    doc = _require(value, where, "subscriptionId")
    return Subscription(doc["subscriptionId"], str(doc.get("displayName") or doc["subscriptionId"]))


_RESOURCE_ID = re.compile(r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/[^/]+/[^/]+/[^/]+", re.I)


def _resource(value: Any, where: str) -> Json:
    doc = _require(value, where, "id")
    rid = doc["id"]
    if not _RESOURCE_ID.match(rid) or len(rid.rstrip("/").split("/")) % 2 == 0:
        raise WorldError(f"{where}: id is not an ARM resource id: {rid!r}")
    parts = rid.split("/")
    tail = parts[parts.index(next(p for p in parts if p.lower() == "providers")) + 1 :]
    derived_type = "/".join([tail[0], *tail[1::2]])
    doc.setdefault("name", parts[-1])
    doc.setdefault("type", derived_type)
    if doc.get("properties") is not None:
        _mapping(doc["properties"], f"{where}.properties")
    return doc


def _role_definition(value: Any, where: str) -> Json:
    doc = _require(value, where, "name")
    props = _mapping(doc.get("properties"), f"{where}.properties")
    if not isinstance(props.get("roleName"), str):
        raise WorldError(f"{where}.properties: missing string 'roleName'")
    if not isinstance(props.get("permissions"), list):
        raise WorldError(f"{where}.properties: missing list 'permissions'")
    doc.setdefault("type", "Microsoft.Authorization/roleDefinitions")
    doc.setdefault("id", f"/providers/Microsoft.Authorization/roleDefinitions/{doc['name']}")
    props.setdefault("type", "CustomRole")
    props.setdefault("assignableScopes", ["/"])
    return doc


def _role_assignment(value: Any, where: str) -> Json:
    doc = _mapping(value, where)
    _require(doc.get("properties"), f"{where}.properties", "scope", "roleDefinitionId", "principalId")
    return doc


def _deny_assignment(value: Any, where: str) -> Json:
    """An ARM deny assignment: `properties.scope`, `permissions` and `principals` ({id, type}) required."""
    doc = _mapping(value, where)
    props = _require(doc.get("properties"), f"{where}.properties", "scope")
    for key in ("permissions", "principals"):
        if not isinstance(props.get(key), list) or not props[key]:
            raise WorldError(f"{where}.properties: missing non-empty list '{key}'")
    for key in ("principals", "excludePrincipals"):
        for i, principal in enumerate(props.get(key) or []):
            _require(principal, f"{where}.properties.{key}[{i}]", "id")
    return doc


def _key_vaults(value: Any) -> dict[str, dict[str, tuple[SecretVersionSpec, ...]]]:
    vaults: dict[str, dict[str, tuple[SecretVersionSpec, ...]]] = {}
    for vault, body in _mapping(value, "keyVaults").items():
        secrets = _mapping(_mapping(body or {}, f"keyVaults.{vault}").get("secrets") or {}, vault)
        vaults[vault.lower()] = {
            name: tuple(
                _secret_version(v, f"keyVaults.{vault}.secrets.{name}[{i}]")
                for i, v in enumerate(versions or [])
            )
            for name, versions in secrets.items()
        }
        for name, specs in vaults[vault.lower()].items():
            if len({spec.deleted_date is None for spec in specs}) > 1:
                raise WorldError(
                    f"keyVaults.{vault}.secrets.{name}: a secret is soft-deleted with all its versions "
                    "(give every version a deletedDate, or none)"
                )
    return vaults


def _secret_version(value: Any, where: str) -> SecretVersionSpec:
    doc = _mapping(value, where)
    version = doc.get("version") or (str(doc["id"]).rstrip("/").rsplit("/", 1)[-1] if doc.get("id") else None)
    if not isinstance(version, str) or not version:
        raise WorldError(f"{where}: missing 'version' (or an 'id' ending in it)")
    attrs = dict(_mapping(doc.get("attributes") or {}, f"{where}.attributes"))
    for key in ("created", "updated", "exp", "nbf"):
        if attrs.get(key) is not None:
            attrs[key] = to_unix(attrs[key], f"{where}.attributes.{key}")
    attrs.setdefault("enabled", True)
    return SecretVersionSpec(
        version=version,
        attributes=attrs,
        content_type=doc.get("contentType"),
        tags=dict(doc.get("tags") or {}),
        deleted_date=(
            to_unix(doc["deletedDate"], f"{where}.deletedDate")
            if doc.get("deletedDate") is not None
            else None
        ),
    )


def _named_list(value: Any, where: str) -> list[Json]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise WorldError(f"{where}: expected a list")
    return [_require(item, f"{where}[{i}]", "name") for i, item in enumerate(value)]


def _purview_account(name: str, value: Any) -> PurviewAccount:
    where = f"purview.{name}"
    doc = _mapping(value or {}, where)
    data_sources = _named_list(doc.get("dataSources"), f"{where}.dataSources")
    scans = {
        ds: _named_list(items, f"{where}.scans.{ds}")
        for ds, items in _mapping(doc.get("scans") or {}, f"{where}.scans").items()
    }
    runs: dict[str, list[Json]] = {}
    for key, items in _mapping(doc.get("runs") or {}, f"{where}.runs").items():
        if key.count("/") != 1:
            raise WorldError(f"{where}.runs: key {key!r} must be DATASOURCE/SCAN")
        if not isinstance(items, list):
            raise WorldError(f"{where}.runs.{key}: expected a list")
        runs[key] = [_mapping(r, f"{where}.runs.{key}[{i}]") for i, r in enumerate(items)]
    statuses = {
        ir: _mapping(status, f"{where}.integrationRuntimeStatus.{ir}")
        for ir, status in _mapping(
            doc.get("integrationRuntimeStatus") or {}, f"{where}.integrationRuntimeStatus"
        ).items()
    }
    endpoints = {
        vnet: _named_list(items, f"{where}.managedPrivateEndpoints.{vnet}")
        for vnet, items in _mapping(
            doc.get("managedPrivateEndpoints") or {}, f"{where}.managedPrivateEndpoints"
        ).items()
    }
    return PurviewAccount(
        name=name,
        data_sources=data_sources,
        scans=scans,
        runs=runs,
        credentials=_named_list(doc.get("credentials"), f"{where}.credentials"),
        azure_key_vaults=_named_list(doc.get("azureKeyVaults"), f"{where}.azureKeyVaults"),
        integration_runtimes=_named_list(doc.get("integrationRuntimes"), f"{where}.integrationRuntimes"),
        integration_runtime_status=statuses,
        managed_private_endpoints=endpoints,
        collections=_named_list(doc.get("collections"), f"{where}.collections"),
        triggers=_triggers(doc.get("triggers"), f"{where}.triggers"),
    )


def _triggers(value: Any, where: str) -> dict[str, Json]:
    """`DATASOURCE/SCAN` → the scan's Trigger JSON (served at `…/scans/{scan}/triggers/default`)."""
    triggers: dict[str, Json] = {}
    for key, trigger in _mapping(value or {}, where).items():
        if key.count("/") != 1:
            raise WorldError(f"{where}: key {key!r} must be DATASOURCE/SCAN")
        triggers[key] = _mapping(trigger, f"{where}.{key}")
    return triggers


def _fault(value: Any, where: str) -> FaultSpec:
    doc = _require(value, where, "path")
    try:
        pattern = re.compile(doc["path"])
    except re.error as exc:
        raise WorldError(f"{where}.path: bad regex: {exc}") from exc
    status = doc.get("status")
    if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
        raise WorldError(f"{where}.status: must be an HTTP error status (400-599)")
    delay = doc.get("delayMs", 0)
    if status is None and not delay:
        raise WorldError(f"{where}: needs a status or a delayMs")
    times = doc.get("times")
    if times is not None and (not isinstance(times, int) or times < 0):
        raise WorldError(f"{where}.times: must be a non-negative integer")
    retry_after = doc.get("retryAfter")
    method = doc.get("method")
    return FaultSpec(
        path=pattern,
        status=status,
        retry_after=float(retry_after) if retry_after is not None else None,
        times=times,
        delay_ms=float(delay),
        method=str(method).upper() if method else None,
        code=str(doc["code"]) if doc.get("code") else None,
        inner_code=str(doc["innerCode"]) if doc.get("innerCode") else None,
    )
