"""The Bolt app: its Web API client and every listener, wired explicitly in one place."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.metrics import Metrics
from bot.settings import Settings
from bot.slack_client import web_client
from bot.watch_main import watch_policy
from handlers.background import Background
from handlers.diagnosis import DiagnosisRunner
from handlers.ports import DiagnosisService, Store
from handlers.render.blocks import RERUN_ACTION_ID
from handlers.render.watch_posts import ACK_ACTION_ID
from handlers.render.watch_posts import RECHECK_ACTION_ID as ALERT_RECHECK_ACTION_ID
from handlers.slack.access import Access
from handlers.slack.acknowledge import AcknowledgeAction
from handlers.slack.actions import RerunAction
from handlers.slack.admission import Admission
from handlers.slack.commands import SlashCommand
from handlers.slack.dedupe import Deduplicate, Deliveries
from handlers.slack.deps import Deps
from handlers.slack.evidence import EVIDENCE_ACTION_ID, LINK_ACTION_IDS, EvidenceAction, LinkButtons
from handlers.slack.home import HOME_RECHECK_ACTION_ID, AppHome
from handlers.slack.mentions import Mentions
from handlers.slack.parse import COMMAND

log = logging.getLogger(__name__)


class SlackIdentity:
    """Who the bot is in Slack (`auth.test`: its user and bot ids), learned at start-up in the background
    (`bot.server.Readiness`) and handed to Bolt by `authorize`, which makes no call: the first request
    never waits on Slack. Until it is known a request is still served, with the token and no bot ids (the
    listeners ignore bot messages themselves; `recheck` then accepts any author's report)."""

    def __init__(self, token: str) -> None:
        self._token = token
        self._user_id: str | None = None
        self._bot_id: str | None = None

    def learned(self, auth_test: AsyncSlackResponse) -> None:
        """The answer of a successful `auth.test`."""
        self._user_id = auth_test.get("user_id")
        self._bot_id = auth_test.get("bot_id")

    def result(self, enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
        """What Bolt's `authorize` answers for a request: no I/O."""
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            bot_token=self._token,
            bot_user_id=self._user_id,
            bot_id=self._bot_id,
            user_id=user_id,
        )


def _printable(value: object) -> str:
    """Text from a request for a log line: control characters (a newline would forge a line) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value))[:80]


def build_slack_app(
    settings: Settings,
    service: DiagnosisService,
    metrics: Metrics,
    background: Background,
    *,
    socket_mode: bool = False,
    store: Store | None = None,
    identity: SlackIdentity | None = None,
) -> AsyncApp:
    """HTTP mode verifies Slack's signature on every request (bad, missing or stale → 401); Socket Mode
    receives over an authenticated websocket, where there is no signature to check. `store` keeps the
    last report per source and the channels' watches (without it, reports work and watches do not).
    `identity`: Bolt authorizes requests with it (no `auth.test` on a request's path) instead of calling
    `auth.test` on the first request."""
    authorize = None
    if identity is not None:

        async def authorize(
            enterprise_id: str | None, team_id: str | None, user_id: str | None
        ) -> AuthorizeResult:
            return identity.result(enterprise_id, team_id, user_id)

    # with `authorize`, Bolt ignores (and warns about) a token on its client: the token is set after
    token = None if identity is not None else settings.slack_bot_token
    client = web_client(token=token, base_url=settings.slack_api_url, counter=metrics)
    app = AsyncApp(
        client=client,
        authorize=authorize,
        signing_secret=settings.slack_signing_secret or "",
        request_verification_enabled=not socket_mode,
        # every ack listener is pure (no I/O), so run it inside the request and answer at once; the work
        # is in background tasks started after it. (The default polls for the ack every 10 ms.)
        process_before_response=True,
        logger=logging.getLogger("purview_bot.slack"),
    )
    client.token = settings.slack_bot_token  # our own calls (Deps, the watcher, auth.test) use it
    # retries and replays: acked and dropped before any listener when seen in this process (after the
    # signature check, which Bolt's own middleware runs first), and claimed in the store by the work
    deliveries = Deliveries(store, metrics)
    app.use(Deduplicate(deliveries))
    deps = Deps(
        runner=DiagnosisRunner(service, metrics, deadline_seconds=settings.deadline_seconds),
        client=client,
        access=Access(settings.allowed_channel_ids, settings.allowed_usergroup),
        metrics=metrics,
        docs_url=settings.docs_url,
        background=background,
        store=store,
        watch_policy=watch_policy(settings),
        admission=Admission(
            max_in_progress=settings.max_concurrent_diagnoses + settings.max_queued,
            user_per_minute=settings.user_rate,
            channel_per_minute=settings.channel_rate,
            metrics=metrics,
        ),
        deliveries=deliveries,
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
    app.action(ALERT_RECHECK_ACTION_ID)(rerun.handle)  # an automatic parent's Re-check: its sources
    app.action(ACK_ACTION_ID)(AcknowledgeAction(deps).handle)
    home = AppHome(deps)
    app.event("app_home_opened")(home.handle_opened)
    app.action(HOME_RECHECK_ACTION_ID)(home.handle_recheck)
    app.action(EVIDENCE_ACTION_ID)(EvidenceAction(deps).handle)
    for link_action in LINK_ACTION_IDS:
        app.action(link_action)(LinkButtons().handle)
    app.error(_log_error)
    return app


async def _log_error(error: Exception, body: dict[str, Any]) -> None:
    """Anything a listener let escape: logged with what Slack sent (its type), never re-raised."""
    kind = body.get("type") or body.get("command") or "request"
    log.error("unhandled error in a Slack listener (%s)", _printable(kind), exc_info=error)
