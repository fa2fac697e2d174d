"""What every Slack listener is handed: passed in by the composition root, never imported as globals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from slack_sdk.web.async_client import AsyncWebClient

from handlers.background import Background
from handlers.diagnosis import DiagnosisRunner
from handlers.ports import DiagnosisMetrics, DiagnosisService, Store
from handlers.slack.access import Access
from handlers.slack.admission import Admission
from handlers.slack.dedupe import Deliveries
from handlers.watch.routing import WatchPolicy


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
    # who may remove another channel's watch: the on-call channels (PURVIEW_BOT_ROUTES,
    # PURVIEW_BOT_ALERT_CHANNEL) and PURVIEW_BOT_ADMIN_USERGROUP (None: a channel removes only its own)
    watch_policy: WatchPolicy | None = None
    # the ack-time bound on work in progress and the per-user / per-channel rates (None: no limits)
    admission: Admission | None = None
    # the Slack deliveries already taken, so retries and replays are worked once (None: no dedupe)
    deliveries: Deliveries | None = None

    @property
    def service(self) -> DiagnosisService:
        return self.runner.service
