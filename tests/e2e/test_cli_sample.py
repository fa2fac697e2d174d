"""The CLI against the sample tenant through the sandbox: findings, schema, exit codes, request hygiene."""

from __future__ import annotations

import json
from collections import Counter
from importlib import resources

import jsonschema
import pytest

from sandbox import Sandbox
from tests.e2e.conftest import run_cli

SCHEMA = json.loads((resources.files("checks") / "data" / "report.schema.json").read_text())

# source → the findings it exists to show (check → status); every other check must not fail.
EXPECTED: dict[str, dict[str, str]] = {
    "sales-adls": {"source-access": "fail"},
    "finance-sql": {"key-vault-access": "fail"},
    "archive-blob": {"key-vault-secret": "fail"},
    "contoso-subscription": {"reader-role": "fail", "private-network": "fail"},
    "lake-private": {"private-network": "fail"},
    "hr-sql": {"integration-runtime": "fail", "credential-rotation": "warn"},
    "ops-storage": {"azure-policy": "fail"},
    "marketing-adls": {"source-access": "pass", "reader-role": "pass"},
    "healthy-blob": {},
}


def statuses(report: dict[str, object]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in report["findings"]:  # type: ignore[attr-defined]
        out.setdefault(f["check"], set()).add(f["status"])
    return out


@pytest.mark.parametrize("source", list(EXPECTED))
async def test_each_sample_source_shows_its_finding(sample_sandbox: Sandbox, source: str) -> None:
    sample_sandbox.clear_requests()
    result = await run_cli("check", source, "--format", "json", env=sample_sandbox.env())
    assert result.stderr == "" or "Traceback" not in result.stderr, result.stderr
    report = result.json()
    jsonschema.validate(report, SCHEMA)
    found = statuses(report)
    for check, status in EXPECTED[source].items():
        assert status in found.get(check, set()), (check, found)
    unexpected = {c: s for c, s in found.items() if "fail" in s and c not in EXPECTED[source]}
    unexpected.pop("scan-history", None)  # a failing source's failing runs are context, not a new cause
    assert not unexpected, unexpected
    assert result.code == (1 if report["status"] == "fail" else 0)
    if source == "healthy-blob":
        assert report["status"] == "pass"
        assert all(f["status"] in ("pass", "skipped") for f in report["findings"]), report["findings"]
    assert result.code == (1 if "fail" in EXPECTED[source].values() else 0)

    # no URL fetched twice in one diagnosis (token requests and Key Vault's 401 challenge aside)
    seen = Counter(
        (r.method, r.path, tuple(sorted(r.query.items())))
        for r in sample_sandbox.requests
        if r.host_area != "token" and r.status != 401
    )
    assert [k for k, n in seen.items() if n > 1] == []
    # never a secret value
    assert not any(getattr(r, "secret_value", False) for r in sample_sandbox.requests)


async def test_sandbox_flag_runs_the_bundled_world() -> None:
    result = await run_cli("check", "healthy-blob", "--sandbox", "--format", "json")
    assert result.code == 0, result.stderr
    assert result.json()["status"] == "pass"


async def test_unknown_source_suggests_closest_names(sample_sandbox: Sandbox) -> None:
    result = await run_cli("check", "sales-adl", env=sample_sandbox.env())
    assert result.code == 2
    assert "sales-adls" in result.stderr
    assert "Traceback" not in result.stderr


async def test_no_account_configured_is_one_sentence() -> None:
    result = await run_cli("check", "x")
    assert result.code == 2
    assert "PURVIEW_ACCOUNTS" in result.stderr
    assert "Traceback" not in result.stderr


async def test_no_credential_is_one_sentence() -> None:
    result = await run_cli("check", "x", env={"PURVIEW_ACCOUNTS": "contoso-pv"})
    assert result.code == 2
    assert "AZURE_CLIENT_ID" in result.stderr
    assert "Traceback" not in result.stderr


async def test_text_output_has_marks_fixes_and_links(sample_sandbox: Sandbox) -> None:
    result = await run_cli("check", "sales-adls", env=sample_sandbox.env())
    assert result.code == 1
    assert "✖" in result.stdout
    assert "$ az role assignment create" in result.stdout
    assert "#permission-the-credential-on-the-data-source" in result.stdout
    assert "sales-adls: fail" in result.stdout


async def test_demo_reports_every_sample_source() -> None:
    result = await run_cli("demo", limit_s=180)
    assert result.code == 0, result.stderr
    for source in EXPECTED:
        assert f"/ {source} (" in result.stdout
