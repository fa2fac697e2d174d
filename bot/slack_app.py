"""The Bolt app: its Web API client and every listener, wired explicitly in one place."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.metrics import Metrics
from bot.settings import Settings
from bot.slack_client import web_client
from handlers.background import Background
from handlers.diagnosis import DiagnosisRunner
from handlers.ports import DiagnosisService, Store
from handlers.render.blocks import RERUN_ACTION_ID
from handlers.slack.access import Access
from handlers.slack.actions import RerunAction
from handlers.slack.commands import SlashCommand
from handlers.slack.deps import Deps
from handlers.slack.mentions import Mentions
from handlers.slack.parse import COMMAND

log = logging.getLogger(__name__)


def build_slack_app(
    settings: Settings,
    service: DiagnosisService,
    metrics: Metrics,
    background: Background,
    *,
    socket_mode: bool = False,
    store: Store | None = None,
) -> AsyncApp:
    """HTTP mode verifies Slack's signature on every request (bad, missing or stale → 401); Socket Mode
    receives over an authenticated websocket, where there is no signature to check. `store` keeps the
    last report per source and the channels' watches (without it, reports work and watches do not)."""
    client = web_client(token=settings.slack_bot_token, base_url=settings.slack_api_url, counter=metrics)
    app = AsyncApp(
        client=client,
        signing_secret=settings.slack_signing_secret or "",
        request_verification_enabled=not socket_mode,
        # every ack listener is pure (no I/O), so run it inside the request and answer at once; the work
        # is in background tasks started after it. (The default polls for the ack every 10 ms.)
        process_before_response=True,
        logger=logging.getLogger("purview_bot.slack"),
    )
    deps = Deps(
        runner=DiagnosisRunner(service, metrics, deadline_seconds=settings.deadline_seconds),
        client=client,
        access=Access(settings.allowed_channel_ids, settings.allowed_usergroup),
        metrics=metrics,
        docs_url=settings.docs_url,
        background=background,
        store=store,
    )
    slash = SlashCommand(deps)
    mentions = Mentions(deps)
    rerun = RerunAction(deps)

    app.command(COMMAND)(slash.handle)
    app.event("app_mention")(mentions.handle_mention)
    app.event({"type": "message", "subtype": None}, matchers=[mentions.is_direct_message])(
        mentions.handle_message
    )
    app.action(RERUN_ACTION_ID)(rerun.handle)
    app.error(_log_error)
    return app


async def _log_error(error: Exception, body: dict[str, Any]) -> None:
    """Anything a listener let escape: logged with what Slack sent (its type), never re-raised."""
    kind = body.get("type") or body.get("command") or "request"
    log.error("unhandled error in a Slack listener (%s)", kind, exc_info=error)
