"""Azure misbehaving on one call: throttling is retried, anything else makes only that finding `unknown`."""

from __future__ import annotations

from typing import Any

from sandbox import Sandbox
from tests.e2e.conftest import run_cli


def by_check(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for f in report["findings"]:
        out.setdefault(f["check"], []).append(f)
    return out


def comparable(report: dict[str, Any]) -> list[tuple[str, str, str | None, str]]:
    return sorted((f["check"], f["status"], f["scan"], f["title"]) for f in report["findings"])


async def test_throttled_then_ok_gives_the_same_report(sample_sandbox: Sandbox) -> None:
    clean = (await run_cli("check", "finance-sql", "--format", "json", env=sample_sandbox.env())).json()
    sample_sandbox.add_fault(
        {"path": r"/providers/Microsoft\.KeyVault/vaults", "status": 429, "retryAfter": 1, "times": 1}
    )
    sample_sandbox.add_fault({"path": r"/scan/credentials/", "status": 429, "retryAfter": 1, "times": 1})
    sample_sandbox.clear_requests()
    throttled = await run_cli("check", "finance-sql", "--format", "json", env=sample_sandbox.env())
    assert throttled.code == 1
    assert comparable(throttled.json()) == comparable(clean)
    assert sum(1 for r in sample_sandbox.requests if r.status == 429) == 2


async def test_persistent_500_on_key_vault_versions_makes_that_finding_unknown(
    sample_sandbox: Sandbox,
) -> None:
    sample_sandbox.add_fault({"path": r"/kv/.*/versions", "status": 500})
    result = await run_cli("check", "archive-blob", "--format", "json", env=sample_sandbox.env())
    report = result.json()
    findings = by_check(report)
    assert [f["status"] for f in findings["key-vault-secret"]] == ["unknown"]
    assert "500" in findings["key-vault-secret"][0]["detail"]
    # the rest of the report is intact
    assert {f["status"] for f in findings["key-vault-access"]} == {"pass"}
    assert findings["scan-history"]


async def test_403_on_role_assignments_names_the_missing_permission(sample_sandbox: Sandbox) -> None:
    sample_sandbox.add_fault({"path": r"/providers/Microsoft\.Authorization/roleAssignments", "status": 403})
    result = await run_cli("check", "sales-adls", "--format", "json", env=sample_sandbox.env())
    findings = by_check(result.json())
    access = findings["source-access"][0]
    assert access["status"] == "unknown"
    assert "roleAssignments/read" in access["detail"]
    assert result.code in (0, 1)
    assert findings["scan-history"][0]["status"] == "fail"  # still there: the run failed
    assert result.code == 1


async def test_timeout_on_one_call_is_unknown_and_the_report_arrives(sample_sandbox: Sandbox) -> None:
    sample_sandbox.add_fault({"path": r"/integrationruntimes/[^/]+/status", "delayMs": 4000})
    env = {**sample_sandbox.env(), "PURVIEW_BOT_CALL_TIMEOUT": "1"}
    result = await run_cli("check", "hr-sql", "--format", "json", env=env)
    findings = by_check(result.json())
    assert [f["status"] for f in findings["integration-runtime"]] == ["unknown"]
    assert "1 s" in findings["integration-runtime"][0]["detail"]
    assert {f["status"] for f in findings["credential-rotation"]} == {"warn"}
