"""What every Slack listener is handed: passed in by the composition root, never imported as globals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from slack_sdk.web.async_client import AsyncWebClient

from checks.model import Report
from handlers.access import Access
from handlers.background import Background
from handlers.service import DiagnosisService
from handlers.store import Store


class HandlerMetrics(Protocol):
    """The counters the handlers feed (implemented by `bot.metrics.Metrics`)."""

    def command(self, kind: str) -> None: ...

    def diagnosis(self, report: Report) -> None: ...

    def diagnosis_failed(self) -> None: ...


@dataclass(frozen=True)
class Deps:
    service: DiagnosisService
    # the app's own Web API client (retries, error counting); Bolt's per-request copies are not used
    client: AsyncWebClient
    access: Access
    metrics: HandlerMetrics
    # a diagnosis that has not answered by then is abandoned and its message says so
    deadline_seconds: float
    # base of the guide's links (`PURVIEW_BOT_DOCS_URL`)
    docs_url: str
    # the work after each ack runs here, so shutdown can wait for it
    background: Background
    # durable state (`PURVIEW_BOT_DATABASE_URL`): the last report per source ("since the last check"),
    # the channels' watches. None when it could not be opened: reports still work, watches do not.
    store: Store | None = None
