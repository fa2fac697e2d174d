"""Changes between runs, and the Re-run button's value: built compactly, parsed strictly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checks.model import Status
from handlers.render.changes import (
    VALUE_LIMIT,
    Changes,
    compare,
    finding_keys,
    parse_rerun_value,
    rerun_value,
    split_key,
)
from tests.render.reports import finding, report, sample_findings

SLACK_EXAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "examples" / "slack"


def test_finding_keys_are_the_problems_once_each() -> None:
    findings = [*sample_findings(), finding("azure-policy", Status.WARN, scan=None)]
    findings.append(finding("azure-policy", Status.WARN, scan=None, title="second policy state"))
    assert finding_keys(report(findings)) == [
        "scan-history|weekly|fail",
        "source-access|weekly|fail",
        "azure-policy||warn",
    ]


def test_split_key_allows_a_bar_in_the_scan_name() -> None:
    assert split_key("source-access|odd|name|unknown") == ("source-access", "odd|name", Status.UNKNOWN)
    assert split_key("azure-policy||warn") == ("azure-policy", None, Status.WARN)
    for bad in ("", "x", "x|y", "x|y|pass", "x|y|bogus", "|y|fail"):
        with pytest.raises(ValueError):
            split_key(bad)


def test_compare_fixed_new_still() -> None:
    previous = ["source-access|weekly|fail", "scan-history|weekly|fail", "azure-policy||warn"]
    current = report(
        [
            finding("scan-history", Status.WARN),
            finding("key-vault-access", scan=None),
            finding("azure-policy", Status.WARN, scan=None),
            finding("source-access", Status.PASS),
        ]
    )
    changes = compare(previous, current)
    assert changes.fixed == ["source-access (weekly)"]
    assert changes.new == ["key-vault-access"]
    # the scan's runs are background: neither fixed, new nor still
    assert changes.still == ["azure-policy"]
    assert changes.changed and not changes.partial
    assert [(i.check, i.before, i.after) for i in changes.items] == [
        ("source-access", Status.FAIL, None),
        ("azure-policy", Status.WARN, Status.WARN),
        ("key-vault-access", None, Status.FAIL),
    ]


def test_a_fail_that_became_a_warn_is_one_change() -> None:
    changes = compare(["source-access|weekly|fail"], report([finding("source-access", Status.WARN)]))
    assert (changes.fixed, changes.new) == ([], [])
    assert changes.still == ["source-access (weekly): fail → warn"] and changes.changed


def test_compare_nothing_changed() -> None:
    current = report(sample_findings())
    changes = compare(finding_keys(current), current)
    assert changes == Changes(still=["source-access (weekly)"])
    assert not changes.changed


def test_rerun_value_round_trips() -> None:
    rep = report(sample_findings())
    value = rerun_value(rep, scan="weekly")
    assert len(value) <= VALUE_LIMIT
    request = parse_rerun_value(value)
    assert (request.source, request.account, request.scan) == ("sales-adls", "contoso-pv", "weekly")
    assert request.previous == finding_keys(rep) and not request.truncated
    assert parse_rerun_value(rerun_value(rep)).scan is None


def test_rerun_value_drops_problems_beyond_the_limit_and_says_so() -> None:
    findings = [finding("source-access", scan=f"scan-{i:03d}-" + "x" * 40) for i in range(100)]
    value = rerun_value(report(findings))
    assert len(value) <= VALUE_LIMIT
    request = parse_rerun_value(value)
    assert request.truncated and 0 < len(request.previous) < 100
    assert request.previous == finding_keys(report(findings))[: len(request.previous)]
    assert compare(request.previous, report(findings), partial=request.truncated).partial


def test_rerun_value_refuses_names_that_cannot_fit() -> None:
    with pytest.raises(ValueError):
        rerun_value(report([], source="s" * 3000))


GOOD = {"v": 1, "s": "sales-adls", "a": "contoso-pv", "c": None, "p": []}


@pytest.mark.parametrize(
    "value",
    [
        "click_me_123",
        "",
        "null",
        "[]",
        '"sales-adls"',
        "{",
        json.dumps({**GOOD, "v": 2}),
        json.dumps({k: v for k, v in GOOD.items() if k != "v"}),
        json.dumps({**GOOD, "x": 1}),
        json.dumps({**GOOD, "s": ""}),
        json.dumps({**GOOD, "s": 5}),
        json.dumps({**GOOD, "s": "a\nb"}),
        json.dumps({**GOOD, "a": None}),
        json.dumps({**GOOD, "c": ["weekly"]}),
        json.dumps({**GOOD, "s": "x" * 300}),
        json.dumps({**GOOD, "p": "source-access|weekly|fail"}),
        json.dumps({**GOOD, "p": [1]}),
        json.dumps({**GOOD, "p": ["source-access|weekly|pass"]}),
        json.dumps({**GOOD, "t": True}),
        json.dumps({**GOOD, "t": 2}),
        json.dumps({**GOOD, "p": ["a|b|fail"] * 400}),  # longer than a button value can be
    ],
)
def test_parse_rerun_value_rejects_anything_unexpected(value: str) -> None:
    with pytest.raises(ValueError, match=r"Re-run value|finding key"):
        parse_rerun_value(value)


def test_parse_rerun_value_rejects_non_strings() -> None:
    for value in (None, 5, {"v": 1}):
        with pytest.raises(ValueError):
            parse_rerun_value(value)


def test_parse_rerun_value_on_slacks_published_button_payload() -> None:
    """Slack's own block_actions example carries a foreign button value: a clear ValueError, no crash."""
    path = SLACK_EXAMPLES / "block_actions_button.json"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    payload = json.loads(path.read_text())
    for action in payload["actions"]:
        with pytest.raises(ValueError, match="not JSON"):
            parse_rerun_value(action.get("value"))
