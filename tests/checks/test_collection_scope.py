"""collection-scope: a scan inside its source's collection or below it (else Scan_CollectionOutOfBound)."""

from __future__ import annotations

from typing import Any

from checks import run_evidence
from checks import sections as s
from checks.catalogue import collection_scope
from checks.classify import SCAN_COLLECTION_OUT_OF_BOUND, classify_text
from checks.errors import GatewayError
from checks.model import Finding, Status
from tests.checks import worlds as w
from tests.fakes import FakeWorld


def coll(name: str, parent: str | None, friendly: str | None = None) -> dict[str, Any]:
    ref = {"referenceName": parent, "type": "CollectionReference"} if parent else None
    return {
        "name": name,
        "friendlyName": friendly or name,
        "parentCollection": ref,
        "collectionProvisioningState": "Succeeded",
    }


TREE = [
    coll(w.ACCOUNT, None),
    coll("sales", w.ACCOUNT, "Sales"),
    coll("sales-emea", "sales", "Sales EMEA"),
    coll("finance", w.ACCOUNT, "Finance"),
]


def _world(scan_collection: str | None, *, tree: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    world = w.adls_world()
    scan = w.pv(world)["scans"]["sales-adls"][0]
    if scan_collection is not None:
        scan["properties"]["collection"] = {"referenceName": scan_collection, "type": "CollectionReference"}
    source = w.pv(world)["dataSources"][0]
    source["properties"]["collection"]["lastModifiedAt"] = "2026-11-20T00:00:00Z"
    w.pv(world)["collections"] = TREE if tree is None else tree
    return world


async def _run(world: dict[str, Any], fake: FakeWorld | None = None) -> list[Finding]:
    fake = fake or FakeWorld(world)
    return await collection_scope.run(await fake.target("sales-adls"))


async def test_same_collection_passes_without_reading_the_tree() -> None:
    fake = FakeWorld(_world("sales"))
    [f] = await _run(fake.world, fake)
    assert f.status is Status.PASS and f.section == s.COLLECTIONS
    assert fake.calls["purview.collections"] == 0


async def test_a_sub_collection_passes() -> None:
    [f] = await _run(_world("sales-emea"))
    assert f.status is Status.PASS and "below" in f.title and "sales-emea < sales" in f.detail


async def test_another_branch_fails_with_the_move_fix() -> None:
    [f] = await _run(_world("finance"))
    assert f.status is Status.FAIL and f.scan == "weekly"
    assert "outside data source sales-adls's collection sales" in f.title
    assert "Scan_CollectionOutOfBound" in f.detail and "Sales (sales)" in f.fix[0]
    assert f.evidence["path"] == ["finance", w.ACCOUNT]
    assert f.evidence[run_evidence.CAUSE_SINCE] == "2026-11-20T00:00:00Z"


async def test_a_success_before_the_source_moved_keeps_the_fail() -> None:
    runs = [w.scan_run("Succeeded", "2026-11-10T00:00:00Z")]
    [f] = await _run(_world("finance"))
    assert run_evidence.overrule([f], {"weekly": runs})[0].status is Status.FAIL


async def test_a_collection_missing_from_the_list_is_unknown_naming_the_role() -> None:
    [f] = await _run(_world("hidden-team"))
    assert f.status is Status.UNKNOWN and "a collection role on the root collection" in f.detail


async def test_the_tree_refused_is_unknown_naming_the_role() -> None:
    fake = FakeWorld(_world("finance"))
    fake.fail["purview.collections"] = GatewayError(
        "list Purview collections", status=403, code="Forbidden", permission="a Purview collection role"
    )
    [f] = await _run(fake.world, fake)
    assert f.status is Status.UNKNOWN and "role on the root collection" in f.evidence["grant"]


async def test_no_collection_on_the_scan_is_skipped() -> None:
    [f] = await _run(_world(None))
    assert f.status is Status.SKIPPED


async def test_one_tree_read_for_every_scan() -> None:
    world = _world("finance")
    extra = w.scan("daily", "AdlsGen2Msi")
    extra["properties"]["collection"] = {"referenceName": "sales-emea", "type": "CollectionReference"}
    w.pv(world)["scans"]["sales-adls"].append(extra)
    fake = FakeWorld(world)
    found = await _run(world, fake)
    assert [f.status for f in found] == [Status.FAIL, Status.PASS]
    assert fake.calls["purview.collections"] == 1


def test_classifier_sends_collection_out_of_bound_to_this_section() -> None:
    found = classify_text("Scan failed: Scan_CollectionOutOfBound. The scan's collection is out of bound.")
    assert (
        found is not None and found.section == s.COLLECTIONS and found.cause == SCAN_COLLECTION_OUT_OF_BOUND
    )


async def test_a_scan_moved_out_after_its_last_success_keeps_the_fail() -> None:
    # reviewer r12: the source moved on 11-20, the scan on 11-25; the success of 11-22 predates the mismatch
    world = _world("finance")
    scan = w.pv(world)["scans"]["sales-adls"][0]
    scan["properties"]["collection"]["lastModifiedAt"] = "2026-11-25T00:00:00Z"
    [f] = await _run(world)
    assert f.evidence[run_evidence.CAUSE_SINCE] == "2026-11-25T00:00:00Z"
    runs = [w.scan_run("Succeeded", "2026-11-22T00:00:00Z")]
    assert run_evidence.overrule([f], {"weekly": runs})[0].status is Status.FAIL
    later = [w.scan_run("Succeeded", "2026-11-26T00:00:00Z")]
    assert run_evidence.overrule([f], {"weekly": later})[0].status is Status.WARN
