"""credential-rotation: secret changed after the last successful run; credential pins an older version."""

from __future__ import annotations

from typing import Any

from checks import sections as s
from checks.catalogue import credential_rotation
from checks.errors import GatewayError
from checks.model import Finding, Status
from tests.checks import kv_worlds as kv
from tests.checks import worlds as w
from tests.fakes import FakeWorld

OLD = kv.version("v1", created="2026-09-01T00:00:00Z")
NEW = kv.version("v2", created="2026-11-20T00:00:00Z")


async def _run(world: dict[str, Any], fake: FakeWorld | None = None) -> list[Finding]:
    fake = fake or FakeWorld(world)
    return await credential_rotation.run(await fake.target(kv.SOURCE))


def _runs(*runs: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {kv.SCAN: list(runs)}


async def test_rotation_after_last_success_warns() -> None:
    runs = _runs(
        w.scan_run("Failed", "2026-11-27T00:00:00Z"), w.scan_run("Succeeded", "2026-11-10T00:00:00Z")
    )
    [f] = await _run(kv.kv_world(versions=[OLD, NEW], runs=runs))
    assert f.status is Status.WARN and f.section == s.SCANS_NO_LONGER_RUN and f.scan == kv.SCAN
    assert "rotated after the last successful run: update the credential/scan" in f.title
    assert "got a new version v2 on 2026-11-20 00:00 UTC" in f.detail
    assert f.evidence["newestCreated"] == "2026-11-20T00:00:00Z"
    assert f.evidence["lastSuccessfulRun"] == {
        "id": "run-2026-11-10T00:00:00Z",
        "endTime": "2026-11-10T00:00:00Z",
    }
    assert f.evidence["newestEnabledVersion"] == "v2"
    assert any(kv.CREDENTIAL in line and "v2" in line for line in f.fix)


async def test_attribute_edit_after_success_is_not_a_rotation() -> None:
    # someone set an expiry or a tag on the version the scan read: `updated` moves, the value does not
    touched = kv.version("v1", created="2026-09-01T00:00:00Z", updated="2026-11-25T00:00:00Z")
    [f] = await _run(
        kv.kv_world(versions=[touched], runs=_runs(w.scan_run("Succeeded", "2026-11-10T00:00:00Z")))
    )
    assert f.status is Status.PASS and "unchanged" in f.title
    assert "attributes were edited on 2026-11-25 00:00 UTC" in f.detail
    assert f.evidence["newestCreated"] == "2026-09-01T00:00:00Z"
    assert f.evidence["newestUpdated"] == "2026-11-25T00:00:00Z"


async def test_pinned_older_version_is_judged_on_created_not_updated() -> None:
    # the pinned old version was edited (an expiry added) after the newer one was created: still older
    old = kv.version("v1", created="2026-09-01T00:00:00Z", updated="2026-11-26T00:00:00Z")
    runs = _runs(w.scan_run("Succeeded", "2026-11-25T00:00:00Z"))
    [f] = await _run(kv.kv_world(versions=[old, NEW], pinned="v1", runs=runs))
    assert f.status is Status.WARN and "pins an older version" in f.title
    assert "rotated" not in f.title


async def test_unchanged_since_last_success_passes() -> None:
    [f] = await _run(kv.kv_world(versions=[OLD], runs=_runs(w.scan_run("Succeeded", "2026-11-10T00:00:00Z"))))
    assert f.status is Status.PASS and "before the last successful run" in f.detail


async def test_last_success_is_the_latest_by_end_time_whatever_the_order() -> None:
    runs = _runs(
        w.scan_run("Succeeded", "2026-11-01T00:00:00Z"), w.scan_run("succeeded", "2026-11-25T00:00:00Z")
    )
    [f] = await _run(kv.kv_world(versions=[OLD, NEW], runs=runs))
    assert f.status is Status.PASS and f.evidence["lastSuccessfulRun"]["endTime"] == "2026-11-25T00:00:00Z"


async def test_pinned_older_version_warns() -> None:
    runs = _runs(w.scan_run("Succeeded", "2026-11-25T00:00:00Z"))
    [f] = await _run(kv.kv_world(versions=[OLD, NEW], pinned="V1", runs=runs))
    assert f.status is Status.WARN and "pins an older version" in f.title
    assert f.evidence["reasons"] == [
        f"credential {kv.CREDENTIAL} pins version v1, older than the newest enabled version v2"
    ]


async def test_disabled_newer_version_is_not_the_newest() -> None:
    disabled = kv.version("v2", enabled=False, created="2026-11-20T00:00:00Z")
    runs = _runs(w.scan_run("Succeeded", "2026-11-10T00:00:00Z"))
    [f] = await _run(kv.kv_world(versions=[OLD, disabled], pinned="v1", runs=runs))
    assert f.status is Status.PASS and f.evidence["newestEnabledVersion"] == "v1"


async def test_no_successful_run_is_skipped() -> None:
    [f] = await _run(
        kv.kv_world(versions=[OLD, NEW], runs=_runs(w.scan_run("Failed", "2026-11-27T00:00:00Z")))
    )
    assert f.status is Status.SKIPPED and "no successful run" in f.detail


async def test_unreadable_runs_is_unknown() -> None:
    fake = FakeWorld(kv.kv_world())
    fake.fail["purview.runs"] = GatewayError("list Purview runs", status=403, permission="Data Reader")
    [f] = await _run({}, fake)
    assert f.status is Status.UNKNOWN and "list Purview runs" in f.detail and "Data Reader" in f.detail


async def test_missing_secret_is_left_to_key_vault_secret() -> None:
    world = kv.kv_world(runs=_runs(w.scan_run("Succeeded", "2026-11-10T00:00:00Z")))
    world["keyVaults"][kv.VAULT]["secrets"] = {}
    [f] = await _run(world)
    assert f.status is Status.SKIPPED and "see the key-vault-secret finding" in f.detail


async def test_msi_scan_is_skipped() -> None:
    [f] = await _run(kv.kv_world(scans=[w.scan("weekly", "AzureSqlDatabaseMsi")]))
    assert f.status is Status.SKIPPED and "no secret involved" in f.detail
