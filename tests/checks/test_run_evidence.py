"""Evidence beats inference: a fail contradicted by the scan's newest successful run becomes a warn."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from checks.diagnose import diagnose
from checks.model import Finding, Status
from checks.registry import CATALOGUE
from checks.run_evidence import BLOCKS_EVERY_RUN, CAUSE_SINCE, CONTRADICTED_BY, overrule
from checks.times import parse_time
from tests.fakes import FakeWorld

SAMPLE: dict[str, Any] = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "sandbox" / "worlds" / "sample.yaml").read_text(encoding="utf-8")
)
NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def _sources() -> list[tuple[str, str]]:
    """(account, source) for every source of every account of the sample tenant."""
    return sorted(
        (account, str(s["name"])) for account, pv in SAMPLE["purview"].items() for s in pv["dataSources"]
    )


OK = {"id": "r-ok", "status": "Succeeded", "endTime": "2026-11-28T07:00:00.1234567Z"}
FAILED = {"id": "r-bad", "status": "Failed", "endTime": "2026-11-28T07:30:00Z"}
OLDER_FAILED = {"id": "r-older", "status": "Failed", "endTime": "2026-11-27T07:00:00Z"}
OLDER_OK = {"id": "r-old", "status": "Succeeded", "endTime": "2026-11-20T07:00:00Z"}
RUNNING = {"id": "r-now", "status": "InProgress", "startTime": "2026-11-28T07:50:00Z"}


def fail(
    scan: str | None = "weekly", check: str = "source-access", evidence: dict[str, Any] | None = None
) -> Finding:
    return Finding(
        check=check,
        status=Status.FAIL,
        section="permission-the-credential-on-the-data-source",
        title="contoso-pv cannot read blobs in stsales",
        detail="No role grants blobs/read.",
        evidence=evidence or {},
        scan=scan,
    )


def test_a_fail_about_a_scan_whose_newest_run_succeeded_becomes_a_warn() -> None:
    [found] = overrule([fail()], {"weekly": [RUNNING, OK, OLDER_FAILED]})
    assert found.status is Status.WARN
    assert found.title == "contoso-pv cannot read blobs in stsales"
    assert found.detail.startswith("Not confirmed: the newest run of scan weekly succeeded")
    assert found.detail.endswith("No role grants blobs/read.")
    assert found.evidence[CONTRADICTED_BY] == {"weekly": {"runId": "r-ok", "endTime": OK["endTime"]}}


def test_a_newest_failed_run_leaves_the_fail() -> None:
    [found] = overrule([fail()], {"weekly": [FAILED, OLDER_OK]})
    assert found.status is Status.FAIL


def test_a_cause_newer_than_the_success_keeps_its_fail() -> None:
    later = fail(evidence={CAUSE_SINCE: "2026-11-28T07:40:00Z"})
    earlier = fail(evidence={CAUSE_SINCE: "2026-11-27T07:40:00Z"})
    kept, downgraded = overrule([later, earlier], {"weekly": [OK]})
    assert kept.status is Status.FAIL
    assert downgraded.status is Status.WARN


def test_a_state_no_run_gets_past_keeps_its_fail() -> None:
    [found] = overrule([fail(evidence={BLOCKS_EVERY_RUN: True})], {"weekly": [OK]})
    assert found.status is Status.FAIL


def test_a_finding_about_no_scan_needs_every_scan_to_contradict_it() -> None:
    account_level = fail(scan=None, check="reader-role")
    [mixed] = overrule([account_level], {"weekly": [OK], "nightly": [FAILED]})
    assert mixed.status is Status.FAIL
    [both] = overrule([account_level], {"weekly": [OK], "nightly": [OK]})
    assert both.status is Status.WARN
    assert set(both.evidence[CONTRADICTED_BY]) == {"weekly", "nightly"}


def test_scan_history_and_other_statuses_are_left_alone() -> None:
    history = fail(check="scan-history")
    warn = Finding(check="source-access", status=Status.WARN, section="x", title="maybe", scan="weekly")
    assert overrule([history, warn], {"weekly": [OK]}) == [history, warn]


def test_no_runs_or_an_unknown_scan_is_no_evidence() -> None:
    assert overrule([fail()], {"weekly": []})[0].status is Status.FAIL
    assert overrule([fail(scan="other")], {"weekly": [OK]})[0].status is Status.FAIL


# --- over every check of the catalogue, on every source of the sample tenant ------------------------------


def _succeeded_just_now(world: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The world with a successful run, ended a minute before `now`, as every scan's newest run."""
    changed = copy.deepcopy(world)
    every = [
        (key, listed, pv["runs"]) for pv in changed["purview"].values() for key, listed in pv["runs"].items()
    ]
    for key, listed, runs in every:
        success = {
            "id": f"ok-{key.replace('/', '-')}",
            "status": "Succeeded",
            "startTime": (now - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "endTime": (now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "runType": "Manual",
        }
        runs[key] = [success, *listed]
    return changed


@pytest.mark.parametrize(("account", "source"), _sources())
async def test_no_check_fails_on_a_cause_a_newer_success_contradicts(account: str, source: str) -> None:
    world = _succeeded_just_now(SAMPLE, NOW)
    report = await diagnose(
        FakeWorld(world, account).facts(),
        source,
        checks=CATALOGUE,
        docs_base="https://example.test/guide",
        now=NOW,
        requester_upn="oncall@contoso.com",
    )
    success_end = NOW - timedelta(minutes=1)
    for finding in report.findings:
        if finding.status is not Status.FAIL or finding.check == "scan-history":
            continue
        since = parse_time(finding.evidence.get(CAUSE_SINCE))
        assert finding.evidence.get(BLOCKS_EVERY_RUN) is True or (
            since is not None and since > success_end
        ), (
            finding.check,
            finding.title,
        )
