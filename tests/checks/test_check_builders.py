"""`Status` knows its severity; a check builds its findings from its own `CheckMeta`; the model is frozen."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from checks import sections
from checks.check import CheckMeta
from checks.errors import GatewayError
from checks.facts import Facts
from checks.gateways.api import Json
from checks.model import Finding, LastRun, Report, ScanSummary, SourceSummary, Status, worst
from checks.target import Target

META = CheckMeta(
    id="demo-check",
    title="Demo",
    sections=(sections.REGISTER_SINGLE, sections.SCAN_MULTIPLE),
    description="A check for these tests.",
)
DENIED = GatewayError("GET thing", status=403, code="Forbidden", permission="Reader on the thing")


def test_severity_orders_the_statuses_and_skipped_does_not_count() -> None:
    assert [s.severity for s in (Status.FAIL, Status.WARN, Status.UNKNOWN, Status.PASS)] == [3, 2, 1, 0]
    assert Status.SKIPPED.severity is None
    assert {s for s in Status if s.is_problem} == {Status.FAIL, Status.WARN, Status.UNKNOWN}


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], Status.PASS),
        ([Status.SKIPPED], Status.PASS),
        ([Status.PASS, Status.SKIPPED], Status.PASS),
        ([Status.UNKNOWN, Status.PASS], Status.UNKNOWN),
        ([Status.UNKNOWN, Status.WARN, Status.SKIPPED], Status.WARN),
        ([Status.WARN, Status.FAIL, Status.UNKNOWN], Status.FAIL),
    ],
)
def test_worst(statuses: list[Status], expected: Status) -> None:
    assert worst(statuses) is expected


def test_finding_is_in_the_checks_first_section_unless_told() -> None:
    f = META.finding(Status.WARN, "t", detail="d", fix=("a", "b"), evidence={"k": 1}, scan="nightly")
    assert f == Finding(
        check="demo-check",
        status=Status.WARN,
        section=sections.REGISTER_SINGLE,
        title="t",
        detail="d",
        fix=["a", "b"],
        evidence={"k": 1},
        scan="nightly",
    )
    assert META.finding(Status.PASS, "t", section=sections.SCAN_MULTIPLE).section == sections.SCAN_MULTIPLE
    bare = META.finding(Status.PASS, "t")
    assert (bare.detail, bare.fix, bare.evidence, bare.scan) == ("", [], {}, None)


def test_unknown_names_the_call_and_the_permission() -> None:
    f = META.unknown("Could not read the thing", DENIED, scan="nightly", evidence={"resourceId": "/x"})
    assert f.status is Status.UNKNOWN and f.check == "demo-check" and f.scan == "nightly"
    assert f.detail == DENIED.reason and "Reader on the thing" in f.detail
    assert f.evidence == {"resourceId": "/x", "error": DENIED.as_evidence()}


def test_skipped() -> None:
    f = META.skipped("Not here", "why", scan="weekly")
    assert (f.status, f.title, f.detail, f.scan, f.section) == (
        Status.SKIPPED,
        "Not here",
        "why",
        "weekly",
        sections.REGISTER_SINGLE,
    )


def _target(source: Json, scans: list[Json]) -> Target:
    facts = Facts(None, "contoso-pv")  # type: ignore[arg-type]  # never read here
    return Target(facts=facts, source=source, scans=scans, now=datetime(2026, 1, 1, tzinfo=UTC))


def test_nothing_to_check() -> None:
    rid: Json = {"name": "src", "properties": {"resourceId": "/subscriptions/s/x"}}
    (no_rid,) = META.nothing_to_check(_target({"name": "src"}, [{"name": "nightly"}]), "identity")
    assert (no_rid.status, no_rid.title, no_rid.detail) == (
        Status.SKIPPED,
        "src has no resourceId",
        "Nothing to read.",
    )
    (no_scans,) = META.nothing_to_check(_target(rid, []), "runtime")
    assert (no_scans.title, no_scans.detail) == ("src has no scans", "No runtime to check.")
    assert META.nothing_to_check(_target(rid, [{"name": "nightly"}]), "identity") == []


def test_the_model_is_frozen_and_keyword_only() -> None:
    finding = META.finding(Status.PASS, "t")
    source = SourceSummary(name="src", kind=None, resource_id=None, collection=None)
    run = LastRun(id=None, status=None, end_time=None, error=None, section=None)
    scan = ScanSummary(name="s", kind=None, integration_runtime=None, credential=None, last_run=run)
    report = Report(
        account="a",
        source=source,
        scans=[scan],
        findings=[finding],
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        elapsed_ms=1,
        docs_base="https://example.test/doc",
    )
    for obj, field in (
        (finding, "title"),
        (source, "name"),
        (run, "id"),
        (scan, "name"),
        (report, "account"),
    ):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, field, "changed")
    with pytest.raises(TypeError):
        Finding("demo-check", Status.PASS, sections.REGISTER_SINGLE, "t")  # type: ignore[call-arg]
