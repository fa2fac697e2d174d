"""The Purview scanning data plane at `/purview/{account}/scan/…` (api-version 2023-09-01 shapes).

Names are matched case-insensitively; lists page with `nextLink` and carry `count`; Key Vault connections'
`baseUrl` is rewritten to the sandbox's vault path, consistently with ARM's `vaultUri`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import TypeVar

from aiohttp import web

from sandbox.context import Context
from sandbox.errors import ApiError, json_response
from sandbox.paging import page
from sandbox.world import Json, PurviewAccount

T = TypeVar("T")


async def handle(ctx: Context, request: web.Request) -> web.Response:
    parts = request.path.rstrip("/").split("/")[2:]  # /purview/ACCOUNT/scan/… → [ACCOUNT, 'scan', …]
    account = _find_key(ctx.world.purview, parts[0] if parts else "", "Purview account")
    if len(parts) >= 2 and parts[1].lower() == "account" and request.method == "GET":
        return _account_plane(ctx, request, account, parts[2:])
    if len(parts) < 2 or parts[1].lower() != "scan":
        raise ApiError(404, "NotFound", f"The path '{request.path}' is not part of the scanning API.")
    if request.method != "GET":
        raise ApiError(405, "MethodNotAllowed", "The sandbox serves scanning API reads only.")
    body = _route(ctx, account, parts[2:])
    if isinstance(body, list):
        chunk, next_link = page(body, request, base_url=ctx.base_url, page_size=ctx.world.page_size)
        return json_response({"value": chunk, "nextLink": next_link, "count": len(body)})
    return json_response(body)


def _route(ctx: Context, account: PurviewAccount, rest: list[str]) -> Json | list[Json]:
    lower = [p.lower() for p in rest]
    match lower:
        case ["datasources"]:
            return [_data_source(d) for d in account.data_sources]
        case ["datasources", _]:
            return _data_source(_named(account.data_sources, rest[1], "data source"))
        case ["datasources", _, "scans", *tail]:
            source = _named(account.data_sources, rest[1], "data source")["name"]
            scans = [_scan(source, s) for s in _find(account.scans, source) or []]
            if not tail:
                return scans
            scan = _named(scans, tail[0], f"scan in data source '{source}'")
            if len(tail) == 1:
                return scan
            if tail[1:] == ["runs"]:
                return copy.deepcopy(_find(account.runs, f"{source}/{scan['name']}") or [])
            if tail[1:] == ["triggers", "default"]:
                trigger = _find(account.triggers, f"{source}/{scan['name']}")
                if trigger is None:
                    raise _not_found(f"trigger 'default' of scan '{scan['name']}'")
                return {"name": "default", **copy.deepcopy(trigger)}
            if len(tail) == 3 and tail[1] == "runs":
                runs = _find(account.runs, f"{source}/{scan['name']}") or []
                run = next((r for r in runs if str(r.get("id", "")).lower() == tail[2]), None)
                if run is None:
                    raise _not_found(f"scan run '{rest[-1]}'")
                return {"value": copy.deepcopy(run)}
        case ["credentials"]:
            return copy.deepcopy(account.credentials)
        case ["credentials", _]:
            return copy.deepcopy(_named(account.credentials, rest[1], "credential"))
        case ["azurekeyvaults"]:
            return [ctx.with_vault_urls(k, "properties", "baseUrl") for k in account.azure_key_vaults]
        case ["azurekeyvaults", _]:
            found = _named(account.azure_key_vaults, rest[1], "Azure Key Vault connection")
            return ctx.with_vault_urls(found, "properties", "baseUrl")
        case ["integrationruntimes"]:
            return copy.deepcopy(account.integration_runtimes)
        case ["integrationruntimes", _]:
            return copy.deepcopy(_named(account.integration_runtimes, rest[1], "integration runtime"))
        case ["integrationruntimes", _, "status"]:
            runtime = _named(account.integration_runtimes, rest[1], "integration runtime")
            status = _find(account.integration_runtime_status, runtime["name"])
            if status is None:
                raise _not_found(f"status of integration runtime '{runtime['name']}'")
            return copy.deepcopy(status)
        case ["managedvirtualnetworks", _, "managedprivateendpoints", *tail]:
            endpoints = _find(account.managed_private_endpoints, rest[1])
            if endpoints is None:
                raise _not_found(f"managed virtual network '{rest[1]}'")
            if not tail:
                return copy.deepcopy(endpoints)
            if len(tail) == 1:
                return copy.deepcopy(_named(endpoints, tail[0], "managed private endpoint"))
    raise _not_found(f"resource '/{'/'.join(rest)}'")


def _account_plane(
    ctx: Context, request: web.Request, account: PurviewAccount, rest: list[str]
) -> web.Response:
    """The account data plane's collections (`/account/collections[/{name}]`, api-version
    2019-11-01-preview): world key `purview.ACCOUNT.collections`, paged with `nextLink` and `count`."""
    lower = [p.lower() for p in rest]
    if lower == ["collections"]:
        items = copy.deepcopy(account.collections)
        chunk, next_link = page(items, request, base_url=ctx.base_url, page_size=ctx.world.page_size)
        return json_response({"value": chunk, "nextLink": next_link, "count": len(items)})
    if len(lower) == 2 and lower[0] == "collections":
        return json_response(copy.deepcopy(_named(account.collections, rest[1], "collection")))
    raise _not_found(f"resource '/account/{'/'.join(rest)}'")


def _not_found(what: str) -> ApiError:
    return ApiError(404, "NotFound", f"The {what} was not found.")


def _data_source(doc: Json) -> Json:
    served = copy.deepcopy(doc)
    served.pop("scans", None)
    return served


def _scan(source: str, doc: Json) -> Json:
    served = copy.deepcopy(doc)
    served.setdefault("dataSourceName", source)
    return served


def _named(items: Iterable[Json], name: str, what: str) -> Json:
    found = next((i for i in items if str(i.get("name", "")).lower() == name.lower()), None)
    if found is None:
        raise _not_found(f"{what} '{name}'")
    return found


def _find(mapping: Mapping[str, T], key: str) -> T | None:
    """A case-insensitive mapping lookup."""
    if key in mapping:
        return mapping[key]
    return next((v for k, v in mapping.items() if k.lower() == key.lower()), None)


def _find_key(mapping: Mapping[str, T], key: str, what: str) -> T:
    found = _find(mapping, key)
    if found is None:
        raise _not_found(f"{what} '{key}'")
    return found
