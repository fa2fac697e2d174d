"""Issue 12's new reads through the real wire: the product's Graph gateway reading an app registration's
credential metadata, and its Purview gateway listing the account's collections (paged, refused)."""

from __future__ import annotations

from typing import Any

import pytest

from checks.errors import GatewayError
from sandbox import Sandbox, load_world
from tests.sandbox.conftest import SCANNER_APP_ID, Json
from tests.sandbox.conftest import product_clients as clients
from tests.sandbox.test_graph import SECRET, graph_world

ACCOUNT = "contoso-pv"
TREE = [
    {"name": ACCOUNT, "friendlyName": ACCOUNT, "parentCollection": None},
    {"name": "sales", "friendlyName": "Sales", "parentCollection": {"referenceName": ACCOUNT}},
    {"name": "sales-emea", "friendlyName": "Sales EMEA", "parentCollection": {"referenceName": "sales"}},
]


def world_with_collections(world_data: Json, **extra: Any) -> Json:
    world = graph_world(world_data, **extra)
    purview = {name: dict(acct) for name, acct in world["purview"].items()}
    purview[ACCOUNT]["collections"] = TREE
    return {**world, "purview": purview}


async def test_application_by_app_id_reads_metadata_never_a_secret(world_data: Json) -> None:
    async with Sandbox(load_world(world_with_collections(world_data), rebase_to=None)) as sandbox:
        async with clients(sandbox) as azure:
            app = await azure.graph.application_by_app_id(SCANNER_APP_ID.upper())
            missing = await azure.graph.application_by_app_id("cccccccc-0000-0000-0000-0000000000ff")
        [request, _] = [r for r in sandbox.requests if r.host_area == "graph"]
    assert app is not None and app["appId"] == SCANNER_APP_ID
    [secret] = app["passwordCredentials"]
    assert secret["endDateTime"] == SECRET["endDateTime"] and secret.get("secretText") is None
    assert missing is None
    assert request.path == "/graph/v1.0/applications"
    assert request.query["$select"] == "id,appId,displayName,passwordCredentials,keyCredentials"


async def test_application_refused_names_application_read_all(world_data: Json) -> None:
    async with Sandbox(load_world(world_with_collections(world_data), rebase_to=None)) as sandbox:
        sandbox.add_fault({"path": r"/graph/v1\.0/applications", "status": 403})
        async with clients(sandbox) as azure:
            with pytest.raises(GatewayError) as refused:
                await azure.graph.application_by_app_id(SCANNER_APP_ID)
    assert refused.value.status == 403 and "Application.Read.All" in refused.value.reason


async def test_collections_are_listed_from_the_account_plane_every_page(world_data: Json) -> None:
    world = world_with_collections(world_data, pageSize=1)
    async with Sandbox(load_world(world, rebase_to=None)) as sandbox:
        async with clients(sandbox) as azure:
            found = await azure.purview(ACCOUNT).collections()
        paths = [(r.path, r.query.get("api-version")) for r in sandbox.requests if r.host_area == "purview"]
    assert [c["name"] for c in found] == [ACCOUNT, "sales", "sales-emea"]
    assert paths[0] == (f"/purview/{ACCOUNT}/account/collections", "2019-11-01-preview")
    assert len(paths) == 3


async def test_collections_refused_names_the_collection_role(world_data: Json) -> None:
    async with Sandbox(load_world(world_with_collections(world_data), rebase_to=None)) as sandbox:
        sandbox.add_fault({"path": r"/purview/.*/account/collections", "status": 403})
        async with clients(sandbox) as azure:
            with pytest.raises(GatewayError) as refused:
                await azure.purview(ACCOUNT).collections()
    assert refused.value.status == 403 and "root collection" in refused.value.reason
