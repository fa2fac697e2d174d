"""`@purview-bot check …` / `recheck` in a thread, and the same in a direct message to the bot.

Slash commands cannot be used inside threads, so triage threads mention the bot; the report goes into
that thread. Events are acked at once; the work runs in a background task. Only a person's plain message
in a DM reaches `handle_message` (the `is_direct_message` matcher), so other events start nothing.

A `check` or `recheck` is admitted before the ack (admission.py: the bound on work in progress, the
rates per user and channel); one turned away is told so privately, nothing is posted in the thread. The
background work first makes sure the event is not one another replica already took (dedupe.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext

from checks.diagnose import NameNotFoundError
from handlers.diagnosis import AccountError, resolve_account
from handlers.render.escape import escape, escape_quoted
from handlers.render.texts import not_found_text
from handlers.slack.access import CHANNEL_REFUSED
from handlers.slack.admission import Refused, Ticket
from handlers.slack.alert_threads import alert_thread, recheck_alert
from handlers.slack.deps import Deps
from handlers.slack.gate import ack_admitted, admit, ours
from handlers.slack.parse import MENTION_USAGE, Check, Help, Recheck, UsageError, parse_mention
from handlers.slack.posting import post_message
from handlers.slack.reporting import Request, post_progress, publish
from handlers.slack.thread_report import find_report

log = logging.getLogger(__name__)

NO_REPORT = "`recheck` works in a thread where I posted a report; here I found none."


class Mentions:
    """The listeners for `app_mention` and for direct messages (`message` events in an `im`)."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def handle_mention(
        self, ack: AsyncAck, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await self._take(ack, body, event, context, "mention")

    async def handle_message(
        self, ack: AsyncAck, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await self._take(ack, body, event, context, "direct-message")

    async def _take(
        self, ack: AsyncAck, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext, name: str
    ) -> None:
        """Admit (no I/O), ack, and leave the work (or the private refusal) to a background task."""
        admitted = self._admit(event)
        await ack_admitted(ack, admitted)
        if isinstance(admitted, Refused):
            self._deps.background.spawn(self._turn_away(body, event, admitted), name)
        else:
            self._deps.background.spawn(self._handle(body, event, context, admitted), name)

    def _admit(self, event: dict[str, Any]) -> Ticket | Refused | None:
        """A ticket for a `check` or `recheck` in an allowed channel, or why not; None for the rest
        (usage, help, refusals), which reads nothing from Azure."""
        channel = str(event.get("channel") or "")
        if not self._deps.access.channel_allowed(channel):
            return None
        try:
            command = parse_mention(str(event.get("text") or ""))
        except UsageError:
            return None
        if not isinstance(command, Check | Recheck):
            return None
        return admit(self._deps, event.get("user"), channel)

    async def _turn_away(self, body: dict[str, Any], event: dict[str, Any], refused: Refused) -> None:
        """Only the asker hears that the bot will not take this now."""
        channel = str(event.get("channel") or "")
        thread_ts = str(event.get("thread_ts") or event.get("ts") or "")
        try:
            if channel and thread_ts and await ours(self._deps, body):
                await self._private(channel, event.get("user"), thread_ts, refused.text)
        except Exception:
            log.exception("could not tell %r in %r that the bot is busy", event.get("user"), channel)

    @staticmethod
    async def is_direct_message(event: dict[str, Any]) -> bool:
        """The Bolt matcher of `handle_message`: a person's plain message in a DM (not an edit, not a
        bot, not a message of ours)."""
        return (
            event.get("channel_type") == "im"
            and not event.get("subtype")
            and not event.get("bot_id")
            and bool(event.get("user"))
        )

    async def _handle(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext, ticket: Ticket | None
    ) -> None:
        channel = str(event.get("channel") or "")
        thread_ts = str(event.get("thread_ts") or event.get("ts") or "")
        user = event.get("user")
        try:
            if channel and thread_ts and await ours(self._deps, body):
                await self._dispatch(event, context, channel, thread_ts, user, ticket)
        except Exception:
            log.exception("mention in %s failed", channel)
        finally:
            if ticket is not None:
                ticket.release()

    async def _dispatch(
        self,
        event: dict[str, Any],
        context: AsyncBoltContext,
        channel: str,
        thread_ts: str,
        user: str | None,
        ticket: Ticket | None,
    ) -> None:
        deps = self._deps
        if not deps.access.channel_allowed(channel):
            deps.metrics.command("refused")
            await self._private(channel, user, thread_ts, CHANNEL_REFUSED)
            return
        try:
            command = parse_mention(str(event.get("text") or ""))
        except UsageError as error:
            deps.metrics.command("invalid")
            await self._reply(channel, thread_ts, f"{escape_quoted(str(error))}\n{MENTION_USAGE}")
            return
        if isinstance(command, Help):
            deps.metrics.command("help")
            await self._reply(channel, thread_ts, MENTION_USAGE)
            return
        deps.metrics.command("check" if isinstance(command, Check) else "recheck")
        refusal = await deps.access.refusal(deps.client, channel, user)
        if refusal:
            await self._private(channel, user, thread_ts, refusal)
            return
        release = ticket.release if ticket else None
        if isinstance(command, Recheck):  # says "Re-checking…" at once, then waits for a slot (publish)
            await self._recheck(channel, thread_ts, user, context.bot_user_id, release)
            return
        # wait for a diagnosis slot; the lookups and the diagnosis run in it, the deadline starts with
        # the diagnosis, and the slot is given back (the request leaves the queue) when it ends
        async with deps.runner.slots.turn(on_release=release):
            await self._check(command, channel, thread_ts, user)

    async def _check(self, command: Check, channel: str, thread_ts: str, user: str | None) -> None:
        deps = self._deps
        try:
            account = resolve_account(command.account, deps.service.accounts)
            source = await deps.runner.resolve_source(command.source, account, command.scan)
        except AccountError as error:
            await self._reply(channel, thread_ts, str(error))
            return
        except NameNotFoundError as error:
            await self._reply(channel, thread_ts, not_found_text(error))
            return
        request = Request(source, account, command.scan, user)
        summary_ts = await post_progress(deps, request, channel=channel, thread_ts=thread_ts)
        try:
            await publish(deps, request, channel=channel, summary_ts=summary_ts, thread_ts=thread_ts)
        except NameNotFoundError as error:
            await deps.client.chat_delete(channel=channel, ts=summary_ts)
            await self._reply(channel, thread_ts, not_found_text(error))

    async def _recheck(
        self,
        channel: str,
        thread_ts: str,
        user: str | None,
        bot_user_id: str | None,
        on_release: Callable[[], None] | None,
    ) -> None:
        deps = self._deps
        alert = await alert_thread(deps, channel, thread_ts)
        if alert is not None:  # an automatic post: its sources, answered in its thread, parent untouched
            await recheck_alert(deps, alert, user, on_release=on_release)
            return
        found = await find_report(deps.client, channel=channel, thread_ts=thread_ts, bot_user_id=bot_user_id)
        if found is None:
            await self._reply(channel, thread_ts, NO_REPORT)
            return
        try:
            account = resolve_account(found.account, deps.service.accounts)
        except AccountError as error:
            await self._reply(channel, thread_ts, str(error))
            return
        request = Request(found.source, account, found.scan, user)
        try:
            await publish(
                deps,
                request,
                channel=channel,
                summary_ts=found.summary_ts,
                thread_ts=thread_ts,
                previous=found.previous,
                on_release=on_release,
            )
        except NameNotFoundError as error:  # renamed or deleted since
            await self._reply(channel, thread_ts, not_found_text(error))

    async def _reply(self, channel: str, thread_ts: str, text: str) -> None:
        """A short visible reply in the thread; `text` must already be escaped."""
        await post_message(self._deps.client, channel=channel, thread_ts=thread_ts, text=text)

    async def _private(self, channel: str, user: str | None, thread_ts: str, text: str) -> None:
        """Only the asker sees it (a refusal is nobody else's business)."""
        if user:
            await self._deps.client.chat_postEphemeral(
                channel=channel, user=user, thread_ts=thread_ts, text=escape(text)
            )
