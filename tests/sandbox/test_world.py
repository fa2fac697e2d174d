"""World loading: typed records, defaults, and validation errors that name the bad entry."""

from __future__ import annotations

from importlib import resources

import pytest

from sandbox import World, WorldError, load_world
from tests.sandbox.conftest import WORLD_FILE, Json


def test_minimal_world_loads() -> None:
    world = load_world(WORLD_FILE)
    assert isinstance(world, World)
    assert world.accounts == ["contoso-pv"]
    assert world.page_size == 100
    assert world.now is not None and world.now.isoformat() == "2026-11-28T08:00:00+00:00"
    alice = next(p for p in world.principals if p.display_name == "Alice")
    assert alice.member_of == ("aaaaaaaa-0000-0000-0000-000000000004",)
    # unquoted YAML timestamps become unix seconds for Key Vault, ISO strings elsewhere
    newest = world.key_vaults["kv-sales"]["sql-password"][0]
    assert newest.attributes["created"] == 1793491200
    assert world.resources[0]["type"] == "Microsoft.Storage/storageAccounts"  # derived from the id


def test_bundled_sample_world_loads_when_present() -> None:
    sample = resources.files("sandbox") / "worlds" / "sample.yaml"
    if not sample.is_file():
        pytest.skip("sandbox/worlds/sample.yaml is not written yet")
    assert load_world(None).accounts


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tenantId": None}, "tenantId"),
        ({"pageSize": 0}, "pageSize"),
        ({"resources": [{"id": "/subscriptions/s/resourceGroups/rg"}]}, "resources[0]"),
        ({"principals": [{"id": "x", "type": "Robot"}]}, "principals[0]"),
        ({"roleAssignments": [{"properties": {"scope": "/"}}]}, "roleAssignments[0].properties"),
        ({"faults": [{"path": "(", "status": 500}]}, "faults[0].path"),
        ({"faults": [{"path": "x"}]}, "faults[0]"),
        ({"faults": [{"path": "x", "status": 200}]}, "faults[0].status"),
        ({"purview": {"pv": {"runs": {"no-slash": []}}}}, "purview.pv.runs"),
        ({"keyVaults": {"kv": {"secrets": {"s": [{"attributes": {}}]}}}}, "keyVaults.kv.secrets.s[0]"),
        ({"keyVaults": {"kv": {"secrets": {"s": [{"version": "v", "attributes": {"exp": "soon"}}]}}}}, "exp"),
    ],
)
def test_validation_names_the_entry(world_data: Json, change: Json, message: str) -> None:
    with pytest.raises(WorldError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_world({**world_data, **change})
