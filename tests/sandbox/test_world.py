"""World loading: typed records, defaults, and validation errors that name the bad entry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest

from sandbox import Sandbox, World, WorldError, load_world
from sandbox.rebase import shift_time_text
from tests.sandbox.conftest import WORLD_FILE, Json

WRITTEN_NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def test_minimal_world_loads() -> None:
    world = load_world(WORLD_FILE, rebase_to=None)  # the file's own dates
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
        (
            {"principals": [{"id": "x", "type": "User", "passwordCredentials": [{}]}]},
            "principals[0].password",
        ),
        (
            {
                "principals": [
                    {"id": "x", "type": "User", "keyCredentials": [{"keyId": "k", "endDateTime": "x"}]}
                ]
            },
            "keyCredentials[0].endDateTime",
        ),
        (
            {"principals": [{"id": "x", "type": "User", "servicePrincipalType": "Application"}]},
            "principals[0]",
        ),
    ],
)
def test_validation_names_the_entry(world_data: Json, change: Json, message: str) -> None:
    with pytest.raises(WorldError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_world({**world_data, **change})


# --- rebasing: a world reads "as of" the moment it is loaded ------------------------------------------


def test_a_loaded_world_reads_as_of_the_wall_clock() -> None:
    before = datetime.now(UTC)
    world = load_world(WORLD_FILE)  # the default: what `demo`, `check --sandbox`, `serve --sandbox` get
    after = datetime.now(UTC)
    assert world.now is not None and before - timedelta(seconds=1) <= world.now <= after
    assert world.shift == world.now - WRITTEN_NOW and world.shift.microseconds == 0
    newest = world.key_vaults["kv-sales"]["sql-password"][0]
    assert newest.attributes["created"] == 1793491200 + int(world.shift.total_seconds())


def test_a_fixed_clock_moves_every_time_and_keeps_each_format(world_data: Json) -> None:
    messy: Json = {
        **world_data,
        "now": "2026-11-28T08:00:00Z",
        "principals": [
            {
                "id": "p1",
                "type": "ServicePrincipal",
                "appId": "a1",
                "passwordCredentials": [
                    {
                        "keyId": "k1",
                        "startDateTime": "2026-06-01T09:00:00Z",
                        "endDateTime": "2026-12-31T00:00:00Z",
                    }
                ],
            }
        ],
        "resources": [
            {
                "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st",
                "properties": {
                    "creationTime": "2024-03-11T09:14:27.5512043Z",
                    "keyCreationTime": {
                        "key1": "2026-08-03T07:55:12.014+02:00",
                        "key2": "2025-11-04T08:12:40",
                    },
                    "releaseDate": "2023-09-01",  # a date is not a time: left alone
                    "note": "rotated at 2026-11-27T14:02:39Z by ops",  # a time inside a text: left alone
                    "count": 1793491200,  # a number outside Key Vault is not a time
                },
            }
        ],
        "keyVaults": {
            "kv": {
                "secrets": {
                    "s": [
                        {
                            "version": "v1",
                            "deletedDate": 1793491200,
                            "attributes": {
                                "created": 1793491200,
                                "updated": "2026-11-01T00:00:00Z",
                                "exp": "2026-12-31",
                                "nbf": "2026-11-01T00:00:00.5Z",
                            },
                        }
                    ]
                }
            }
        },
        "purview": {
            "pv": {
                "runs": {
                    "ds/scan": [{"id": "r1", "status": "Failed", "endTime": "2026-11-27T22:30:05.0014477Z"}]
                }
            }
        },
    }
    clock = datetime(2027, 12, 15, 10, 30, 0, 750000, tzinfo=UTC)
    world = load_world(messy, rebase_to=clock)
    shift = timedelta(days=382, hours=2, minutes=30)  # whole seconds: the 0.75 s is dropped
    assert world.shift == shift and world.now == clock.replace(microsecond=0)
    props = world.resources[0]["properties"]
    assert props["creationTime"] == "2025-03-28T11:44:27.5512043Z"
    assert props["keyCreationTime"] == {
        "key1": "2027-08-20T10:25:12.014+02:00",
        "key2": "2026-11-21T10:42:40",
    }
    assert props["releaseDate"] == "2023-09-01"
    assert props["note"] == "rotated at 2026-11-27T14:02:39Z by ops"
    assert props["count"] == 1793491200
    (cred,) = world.principals[0].password_credentials
    assert (cred["startDateTime"], cred["endDateTime"]) == ("2027-06-18T11:30:00Z", "2028-01-17T02:30:00Z")
    assert world.purview["pv"].runs["ds/scan"][0]["endTime"] == "2027-12-15T01:00:05.0014477Z"
    (version,) = world.key_vaults["kv"]["s"]
    moved = int(shift.total_seconds())
    assert version.deleted_date == 1793491200 + moved
    assert version.attributes["created"] == 1793491200 + moved
    assert version.attributes["updated"] == int(datetime(2026, 11, 1, tzinfo=UTC).timestamp()) + moved
    assert version.attributes["exp"] == int(datetime(2026, 12, 31, tzinfo=UTC).timestamp()) + moved
    assert version.attributes["nbf"] == int(datetime(2026, 11, 1, tzinfo=UTC).timestamp()) + moved
    # the caller's document is not changed
    assert messy["resources"][0]["properties"]["creationTime"] == "2024-03-11T09:14:27.5512043Z"


def test_without_now_or_with_rebase_to_none_the_file_is_kept(world_data: Json) -> None:
    timeless = {k: v for k, v in world_data.items() if k != "now"}
    clock = datetime(2030, 1, 1, tzinfo=UTC)
    assert load_world(timeless, rebase_to=clock).now is None
    kept = load_world(timeless, rebase_to=clock).key_vaults["kv-sales"]["sql-password"][0]
    assert kept.attributes["created"] == 1793491200
    world = load_world(world_data, rebase_to=None)
    assert world.now == WRITTEN_NOW and world.shift == timedelta(0)
    backwards = load_world(world_data, rebase_to=datetime(2026, 11, 27, 8, 0, tzinfo=UTC))
    assert backwards.shift == timedelta(days=-1)


@pytest.mark.parametrize(
    ("text", "moved"),
    [
        ("2026-11-28T08:00:00Z", "2026-11-29T09:01:01Z"),
        ("2026-11-28T08:00:00.1234567Z", "2026-11-29T09:01:01.1234567Z"),
        ("2026-11-28t08:00:00z", "2026-11-29t09:01:01z"),
        ("2026-11-28 08:00:00+05:30", "2026-11-29 09:01:01+05:30"),
        ("2026-11-28T08:00:00-0800", "2026-11-29T09:01:01-0800"),
        ("2026-11-28T08:00", "2026-11-29T09:01:01"),  # a shift with seconds says them
        ("2026-11-28T23:59:59,5Z", "2026-11-30T01:01:00,5Z"),
        ("2026-11-28", "2026-11-28"),
        ("2026-13-45T08:00:00Z", "2026-13-45T08:00:00Z"),  # not a date: not touched
        ("version 2026-11-28T08:00:00Z", "version 2026-11-28T08:00:00Z"),
        ("5.44.8984.1", "5.44.8984.1"),
    ],
)
def test_time_strings_keep_their_format(text: str, moved: str) -> None:
    assert shift_time_text(text, timedelta(days=1, hours=1, minutes=1, seconds=1)) == moved


def test_principal_credentials_in_graphs_shape(world_data: Json) -> None:
    secret = {"keyId": "k1", "displayName": "scan", "endDateTime": "2027-01-01T00:00:00Z", "secretText": "s3"}
    cert = {"keyId": "k2", "endDateTime": "2027-01-01T00:00:00Z"}
    raw = {
        **world_data,
        "principals": [
            {"id": "p1", "type": "ServicePrincipal", "appId": "a1", "passwordCredentials": [secret]},
            {
                "id": "p2",
                "type": "ServicePrincipal",
                "appId": "a2",
                "servicePrincipalType": "ManagedIdentity",
                "keyCredentials": [cert],
            },
        ],
    }
    app, msi = load_world(raw, rebase_to=None).principals
    assert app.has_application and not msi.has_application
    assert app.password_credentials == (
        {
            "customKeyIdentifier": None,
            "displayName": "scan",
            "endDateTime": "2027-01-01T00:00:00Z",
            "hint": None,
            "keyId": "k1",
            "secretText": None,
            "startDateTime": None,
        },
    )
    (key,) = msi.key_credentials
    assert (key["type"], key["usage"], key["key"]) == ("AsymmetricX509Cert", "Verify", None)


def test_python_m_sandbox_rebases_unless_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    import sandbox.__main__ as standalone

    served: list[World] = []

    async def capture(sb: Sandbox) -> None:
        served.append(sb.world)

    monkeypatch.setattr(standalone, "_serve", capture)
    assert standalone.main([str(WORLD_FILE)]) == 0
    assert standalone.main([str(WORLD_FILE), "--as-written"]) == 0
    rebased, as_written = served
    assert rebased.shift != timedelta(0) and as_written.shift == timedelta(0)
    assert as_written.now == WRITTEN_NOW
