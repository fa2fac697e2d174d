"""Key Vault secrets at `/kv/{vault}/…`: listing secrets and their versions' properties, never values.

Ids keep the vault's real host (`https://NAME.vault.azure.net/secrets/…`) because the SDK parses them that
way; next links point at the sandbox. Reading a value is served but flagged on the recorded request.

A soft-deleted secret (its versions carry `deletedDate` in the world) is gone from `/secrets` (404
SecretNotFound, as Key Vault answers) and listed under `/deletedsecrets` with its deletion and purge dates.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from sandbox.context import Context
from sandbox.errors import ApiError, json_response
from sandbox.filters import query_param
from sandbox.paging import page
from sandbox.world import Json, SecretVersionSpec

MAX_RESULTS = 25
_DEFAULT_ATTRIBUTES = {"recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90}


async def handle(ctx: Context, request: web.Request) -> web.Response:
    parts = request.path.split("/")[2:]  # /kv/VAULT/secrets/… → [VAULT, 'secrets', …]
    vault = parts[0].lower() if parts else ""
    secrets = ctx.world.key_vaults.get(vault)
    if secrets is None:
        raise ApiError(404, "VaultNotFound", f"The vault '{vault}' does not exist in the sandbox world.")
    collection = parts[1].lower() if len(parts) >= 2 else ""
    if request.method != "GET" or collection not in ("secrets", "deletedsecrets"):
        raise ApiError(400, "BadParameter", f"The sandbox serves secret reads only, not '{request.path}'.")
    rest = parts[2:]
    if collection == "deletedsecrets":
        return _deleted(ctx, request, vault, secrets, rest)
    secrets = {n: v for n, v in secrets.items() if not _is_deleted(v)}
    if not rest or rest == [""]:
        return _list(ctx, request, [_secret_item(ctx, vault, n, v) for n, v in secrets.items() if v])
    name, versions = _secret(secrets, rest[0])
    if len(rest) == 2 and rest[1].lower() == "versions":
        return _list(ctx, request, [_version_item(ctx, vault, name, v) for v in versions])
    if len(rest) <= 2:
        return json_response(_value(ctx, vault, name, versions, rest[1] if len(rest) == 2 else ""))
    raise ApiError(400, "BadParameter", f"The path '{request.path}' is not a Key Vault secrets path.")


def reads_secret_value(path: str) -> bool:
    """True for `/kv/{vault}/secrets/{name}[/{version}]`: a request for a value, whatever its answer."""
    parts = path.split("/")[2:]
    if len(parts) < 3 or parts[1].lower() != "secrets" or not parts[2]:
        return False
    rest = parts[2:]
    return len(rest) == 1 or (len(rest) == 2 and rest[1].lower() != "versions")


def _secret(
    secrets: Mapping[str, tuple[SecretVersionSpec, ...]], name: str
) -> tuple[str, tuple[SecretVersionSpec, ...]]:
    for known, versions in secrets.items():
        if known.lower() == name.lower() and versions:
            return known, versions
    raise ApiError(
        404,
        "SecretNotFound",
        f"A secret with (name/id) {name} was not found in this key vault. If you recently deleted this "
        "secret you may be able to recover it using the correct recovery command. For help resolving this "
        "issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
    )


def _is_deleted(versions: tuple[SecretVersionSpec, ...]) -> bool:
    return bool(versions) and all(v.deleted_date is not None for v in versions)


def _deleted(
    ctx: Context,
    request: web.Request,
    vault: str,
    secrets: Mapping[str, tuple[SecretVersionSpec, ...]],
    rest: list[str],
) -> web.Response:
    """`GET /deletedsecrets` (every page) and `GET /deletedsecrets/{name}`: properties, never a value."""
    deleted = {n: v for n, v in secrets.items() if _is_deleted(v)}
    if not rest or rest == [""]:
        return _list(ctx, request, [_deleted_item(ctx, vault, n, v) for n, v in deleted.items()])
    if len(rest) == 1:
        for name, versions in deleted.items():
            if name.lower() == rest[0].lower():
                return json_response(_deleted_item(ctx, vault, name, versions))
        raise ApiError(
            404, "SecretNotFound", f"Deleted Secret not found: {rest[0]}. It may have been purged."
        )
    raise ApiError(400, "BadParameter", f"The path '{request.path}' is not a Key Vault secrets path.")


def _deleted_item(ctx: Context, vault: str, name: str, versions: tuple[SecretVersionSpec, ...]) -> Json:
    """A DeletedSecretItem: the current version's properties with the deletion's dates and recovery id."""
    item = _common(ctx, _latest(versions), f"https://{vault}.vault.azure.net/secrets/{name}")
    deleted = max(v.deleted_date or 0 for v in versions)
    days = int(item["attributes"].get("recoverableDays") or 90)
    return {
        "recoveryId": f"https://{vault}.vault.azure.net/deletedsecrets/{name}",
        "deletedDate": deleted,
        "scheduledPurgeDate": deleted + days * 86400,
        **item,
    }


def _list(ctx: Context, request: web.Request, items: list[Json]) -> web.Response:
    size = ctx.world.page_size
    raw = query_param(request.query, "maxresults")
    if raw is not None:
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_RESULTS:
            raise ApiError(
                400, "BadParameter", f"Invalid maxresults '{raw}': must be between 1 and {MAX_RESULTS}."
            )
        size = min(size, int(raw))
    chunk, next_link = page(items, request, base_url=ctx.base_url, page_size=size)
    return json_response({"value": chunk, "nextLink": next_link})


def _attributes(ctx: Context, spec: SecretVersionSpec) -> Json:
    stamp = int(ctx.now.timestamp())
    return {"enabled": True, "created": stamp, "updated": stamp, **_DEFAULT_ATTRIBUTES, **spec.attributes}


def _common(ctx: Context, spec: SecretVersionSpec, secret_id: str) -> Json:
    item: Json = {"id": secret_id, "attributes": _attributes(ctx, spec), "tags": dict(spec.tags)}
    if spec.content_type is not None:
        item["contentType"] = spec.content_type
    item["managed"] = False
    return item


def _version_item(ctx: Context, vault: str, name: str, spec: SecretVersionSpec) -> Json:
    return _common(ctx, spec, f"https://{vault}.vault.azure.net/secrets/{name}/{spec.version}")


def _latest(versions: tuple[SecretVersionSpec, ...]) -> SecretVersionSpec:
    """The current version: the most recently created (the first listed on a tie)."""
    return max(versions, key=lambda v: int(v.attributes.get("created") or 0))


def _secret_item(ctx: Context, vault: str, name: str, versions: tuple[SecretVersionSpec, ...]) -> Json:
    """A secret in the secrets list: its id has no version; the attributes are the current version's."""
    return _common(ctx, _latest(versions), f"https://{vault}.vault.azure.net/secrets/{name}")


def _value(
    ctx: Context, vault: str, name: str, versions: tuple[SecretVersionSpec, ...], version: str
) -> Json:
    if version:
        spec = next((v for v in versions if v.version.lower() == version.lower()), None)
        if spec is None:
            raise ApiError(
                404,
                "SecretNotFound",
                f"A secret with (name/id) {name}/{version} was not found in this key vault.",
            )
    else:
        spec = _latest(versions)
    body = _version_item(ctx, vault, name, spec)
    return {"value": "sandbox-value", **body}
