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

ACCOUNT, LEGACY = "contoso-pv", "contoso-legacy-pv"  # the sandbox's PURVIEW_ACCOUNTS, the first the default
# source → the findings it exists to show (check → status); every other check must not fail. The CLI has no
# requester, so a single source's reader-role is skipped (only the person registering it needs Reader).
EXPECTED: dict[str, dict[str, str]] = {
    "sales-adls": {"source-access": "fail"},
    "finance-sql": {"key-vault-access": "fail", "private-network": "pass"},
    "archive-blob": {"key-vault-secret": "fail"},
    "contoso-subscription": {"reader-role": "fail", "private-network": "fail"},
    "lake-private": {"private-network": "fail"},
    "hr-sql": {"integration-runtime": "fail", "credential-rotation": "warn"},
    "marketing-adls": {"source-access": "pass", "reader-role": "skipped"},
    "healthy-blob": {},
    "landing-rg": {"reader-role": "pass"},
    "payroll-sql": {"source-access": "fail"},
    "research-adls": {"source-access": "warn"},
    "partner-blob": {"source-access": "fail"},
    "vendor-blob": {"source-access": "fail"},
    "curated-adls": {"source-access": "pass"},
    "crm-sql": {"private-network": "fail"},
    "orders-cosmos": {"private-network": "pass"},
    "reporting-rg": {"private-network": "skipped"},
    "erp-sql": {"integration-runtime": "warn"},
    "lake-mvnet": {"private-network": "fail", "integration-runtime": "fail"},
    "timesheets-sql": {"key-vault-secret": "warn"},
    "benefits-sql": {"key-vault-secret": "fail"},
    "pensions-sql": {"key-vault-secret": "fail"},
    "recruiting-sql": {"credential-rotation": "pass"},
    "legal-sql": {"key-vault-access": "pass"},
    "claims-sql": {"key-vault-access": "fail"},
    "research-sql": {"key-vault-access": "warn"},
    "vendor-sp-sql": {"credential-expiry": "fail"},
    "emea-adls": {"collection-scope": "fail"},
    "landing-parquet": {"runtime-host": "fail", "integration-runtime": "pass"},
    "contoso-powerbi": {"power-bi": "warn", "scan-history": "fail"},
    "ops-storage": {"azure-policy": "fail"},
    "docs-blob": {"azure-policy": "warn"},
}
LEGACY_SOURCES = {"ops-storage", "docs-blob"}
# set up as Microsoft's connector pages advise: the report passes, every finding passes or is skipped
HEALTHY = {
    "healthy-blob", "marketing-adls", "landing-rg", "curated-adls", "orders-cosmos", "recruiting-sql",
    "legal-sql",
}  # fmt: skip


def account_of(source: str) -> str:
    return LEGACY if source in LEGACY_SOURCES else ACCOUNT


def statuses(report: dict[str, object]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in report["findings"]:  # type: ignore[attr-defined]
        out.setdefault(f["check"], set()).add(f["status"])
    return out


@pytest.mark.parametrize("source", list(EXPECTED))
async def test_each_sample_source_shows_its_finding(sample_sandbox: Sandbox, source: str) -> None:
    sample_sandbox.clear_requests()
    args = ("--account", LEGACY) if account_of(source) == LEGACY else ()  # contoso-pv is the default
    result = await run_cli("check", source, *args, "--format", "json", env=sample_sandbox.env())
    assert result.stderr == "" or "Traceback" not in result.stderr, result.stderr
    report = result.json()
    jsonschema.validate(report, SCHEMA)
    assert report["account"] == account_of(source)
    found = statuses(report)
    for check, status in EXPECTED[source].items():
        assert status in found.get(check, set()), (check, found)
    unexpected = {c: s for c, s in found.items() if "fail" in s and c not in EXPECTED[source]}
    unexpected.pop("scan-history", None)  # a failing source's failing runs are context, not a new cause
    assert not unexpected, unexpected
    assert result.code == (1 if report["status"] == "fail" else 0)
    if source in HEALTHY:
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


async def test_sandbox_flag_with_the_second_account() -> None:
    result = await run_cli("check", "ops-storage", "--sandbox", "--account", LEGACY, "--format", "json")
    assert result.code == 1, result.stderr
    report = result.json()
    assert report["account"] == LEGACY
    assert {f["status"] for f in report["findings"] if f["check"] == "azure-policy"} == {"fail", "pass"}
    # ops-storage is not a source of the default account
    result = await run_cli("check", "ops-storage", "--sandbox")
    assert result.code == 2 and "Traceback" not in result.stderr


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
    assert "$ SCOPE=/subscriptions/" in result.stdout and "  az role assignment create \\\n" in result.stdout
    assert "#permission-the-credential-on-the-data-source" in result.stdout
    assert "sales-adls: fail" in result.stdout


async def test_demo_reports_every_source_of_every_account() -> None:
    result = await run_cli("demo", limit_s=180)
    assert result.code == 0, result.stderr
    for account in (ACCOUNT, LEGACY):
        count = sum(1 for s in EXPECTED if account_of(s) == account)
        assert f"purview-bot demo: {count} data sources of Purview account {account} (sample tenant)" in (
            result.stdout
        )
    for source in EXPECTED:
        assert f"{account_of(source)} / {source} (" in result.stdout
    # in order: the first account's sources, then the second's
    out = result.stdout
    assert out.index(f"{ACCOUNT} / healthy-blob (") < out.index(f"{LEGACY} / ops-storage (")


async def test_demo_json_lists_every_source() -> None:
    result = await run_cli("demo", "--format", "json", limit_s=180)
    assert result.code == 0, result.stderr
    reports = result.json()
    assert {(r["account"], r["source"]["name"]) for r in reports} == {(account_of(s), s) for s in EXPECTED}
