"""The bot's Prometheus metrics, in a registry this object owns (no module-level state).

One object per process serves `/metrics`; it is also the Azure call observer (`checks` only knows the
`CallObserver` protocol) and the Slack API error counter the handlers and the Web API client report to.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from checks.model import Report

# Azure calls take from a few ms (cached tokens, the sandbox) to the call timeout (20 s by default).
AZURE_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 60.0)


class Metrics:
    """Counters of commands, diagnoses, findings, Azure calls and Slack API errors."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._commands = Counter(
            "purview_bot_commands",
            "Commands received, by kind (check, list, runs, help, invalid, recheck, rerun)",
            ["command"],
            registry=self.registry,
        )
        self._diagnoses = Counter(
            "purview_bot_diagnoses",
            "Diagnoses finished, by report status (or error when none could be made)",
            ["status"],
            registry=self.registry,
        )
        self._findings = Counter(
            "purview_bot_findings",
            "Findings of finished diagnoses, by check and status",
            ["check", "status"],
            registry=self.registry,
        )
        self._azure_seconds = Histogram(
            "purview_bot_azure_call_seconds",
            "Duration of each HTTP request to Azure (each retry attempt counts), by plane",
            ["plane"],
            buckets=AZURE_BUCKETS,
            registry=self.registry,
        )
        self._azure_errors = Counter(
            "purview_bot_azure_call_errors",
            "Azure HTTP requests that failed, by plane and Azure error code (or HTTP status, exception)",
            ["plane", "code"],
            registry=self.registry,
        )
        self._slack_errors = Counter(
            "purview_bot_slack_api_errors",
            "Slack Web API calls that failed after retries, by method and Slack error",
            ["method", "error"],
            registry=self.registry,
        )
        self._alerts = Counter(
            "purview_bot_alerts",
            "Azure Monitor webhook requests, by result (accepted, unauthorized, malformed, ignored)",
            ["result"],
            registry=self.registry,
        )
        self._http_refused = Counter(
            "purview_bot_http_refused",
            "Requests and connections the web server turned away, by reason (bad_signature, bad_body, "
            "too_large, slow_body, broken_body, connection_limit, busy)",
            ["reason"],
            registry=self.registry,
        )
        self._requests_refused = Counter(
            "purview_bot_requests_refused",
            "Slack requests that read Azure turned away in their ack, by reason (busy: the queue is "
            "full; user_rate, channel_rate: the per-user or per-channel limit)",
            ["reason"],
            registry=self.registry,
        )
        self._duplicates = Counter(
            "purview_bot_slack_duplicates",
            "Slack deliveries acknowledged and not worked again (retries, replays), by kind (event, "
            "interaction) and by what recognised them (memory, store)",
            ["kind", "layer"],
            registry=self.registry,
        )
        self._shared = Counter(
            "purview_bot_diagnoses_shared",
            "Requests answered by an identical diagnosis already in flight (no diagnosis of their own)",
            registry=self.registry,
        )

    def http_refused(self, reason: str) -> None:
        """One request or connection the web server turned away before any listener saw it."""
        self._http_refused.labels(reason=reason).inc()

    def command(self, kind: str) -> None:
        self._commands.labels(command=kind).inc()

    def diagnosis(self, report: Report) -> None:
        self._diagnoses.labels(status=report.status.value).inc()
        for finding in report.findings:
            self._findings.labels(check=finding.check, status=finding.status.value).inc()

    def diagnosis_failed(self) -> None:
        self._diagnoses.labels(status="error").inc()

    def observe(self, plane: str, seconds: float, error_code: str | None) -> None:
        """`checks.gateways.pipeline.CallObserver`: one HTTP request to Azure."""
        self._azure_seconds.labels(plane=plane).observe(seconds)
        if error_code is not None:
            self._azure_errors.labels(plane=plane, code=error_code).inc()

    def slack_api_error(self, method: str, error: str) -> None:
        self._slack_errors.labels(method=method, error=error).inc()

    def alert(self, result: str) -> None:
        """One request to the alert webhook: accepted, unauthorized, malformed or ignored."""
        self._alerts.labels(result=result).inc()

    def refused(self, reason: str) -> None:
        """`handlers.slack.admission.AdmissionMetrics`: a request turned away in its ack."""
        self._requests_refused.labels(reason=reason).inc()

    def duplicate(self, kind: str, layer: str) -> None:
        """`handlers.slack.dedupe.DedupeMetrics`: a Slack retry or replay not worked again."""
        self._duplicates.labels(kind=kind, layer=layer).inc()

    def diagnosis_shared(self) -> None:
        """`handlers.diagnosis.SharedDiagnosisMetrics`: a request joined a diagnosis in flight."""
        self._shared.inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry)
