"""The Prometheus text: the contract's metric names and labels, from a registry per Metrics object."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.metrics import Metrics
from checks.model import Finding, Report, SourceSummary, Status


def report(*statuses: Status) -> Report:
    findings = [
        Finding(check=f"check-{i}", status=s, section="section", title="title")
        for i, s in enumerate(statuses)
    ]
    return Report(
        account="contoso-pv",
        source=SourceSummary(name="s", kind=None, resource_id=None, collection=None),
        scans=[],
        findings=findings,
        started_at=datetime.now(UTC),
        elapsed_ms=1,
        docs_base="x",
    )


def sample(text: str, prefix: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, (prefix, lines)
    return float(lines[0].rsplit(" ", 1)[1])


def test_metrics_text() -> None:
    metrics = Metrics()
    metrics.command("check")
    metrics.command("check")
    metrics.command("list")
    metrics.diagnosis(report(Status.FAIL, Status.PASS))
    metrics.diagnosis_failed()
    metrics.observe("arm", 0.2, None)
    metrics.observe("arm", 0.3, "AuthorizationFailed")
    metrics.observe("keyvault", 1.0, "500")
    metrics.slack_api_error("chat.postMessage", "not_in_channel")
    text = metrics.render().decode()

    assert sample(text, 'purview_bot_commands_total{command="check"}') == 2
    assert sample(text, 'purview_bot_commands_total{command="list"}') == 1
    assert sample(text, 'purview_bot_diagnoses_total{status="fail"}') == 1
    assert sample(text, 'purview_bot_diagnoses_total{status="error"}') == 1
    assert sample(text, 'purview_bot_findings_total{check="check-0",status="fail"}') == 1
    assert sample(text, 'purview_bot_findings_total{check="check-1",status="pass"}') == 1
    assert sample(text, 'purview_bot_azure_call_seconds_count{plane="arm"}') == 2
    assert sample(text, 'purview_bot_azure_call_seconds_sum{plane="arm"}') == 0.5
    assert sample(text, 'purview_bot_azure_call_errors_total{code="AuthorizationFailed",plane="arm"}') == 1
    assert sample(text, 'purview_bot_azure_call_errors_total{code="500",plane="keyvault"}') == 1
    slack = 'purview_bot_slack_api_errors_total{error="not_in_channel",method="chat.postMessage"}'
    assert sample(text, slack) == 1
    assert "# TYPE purview_bot_azure_call_seconds histogram" in text


def test_each_metrics_object_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.command("check")
    assert 'purview_bot_commands_total{command="check"}' not in second.render().decode()
