"""What every Slack listener is handed: passed in by the composition root, never imported as globals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from slack_sdk.web.async_client import AsyncWebClient

from handlers.background import Background
from handlers.diagnosis import DiagnosisRunner
from handlers.ports import DiagnosisMetrics, DiagnosisService, Store
from handlers.slack.access import Access


class HandlerMetrics(DiagnosisMetrics, Protocol):
    """The counters the Slack listeners feed (implemented by `bot.metrics.Metrics`)."""

    def command(self, kind: str) -> None: ...


@dataclass(frozen=True)
class Deps:
    # every diagnosis goes through it: deadline + grace, metrics, the reason of a failure
    runner: DiagnosisRunner
    # the app's own Web API client (retries, error counting); Bolt's per-request copies are not used
    client: AsyncWebClient
    access: Access
    metrics: HandlerMetrics
    # base of the guide's links (`PURVIEW_BOT_DOCS_URL`)
    docs_url: str
    # the work after each ack runs here, so shutdown can wait for it
    background: Background
    # durable state (`PURVIEW_BOT_DATABASE_URL`): the last report per source ("since the last check"),
    # the channels' watches. None when it could not be opened: reports still work, watches do not.
    store: Store | None = None

    @property
    def service(self) -> DiagnosisService:
        return self.runner.service
