"""The Re-run button (`block_actions`, `purview_rerun`): diagnose again, say what changed, in the same thread.

The button's value comes back from Slack as untrusted input (an older version's button, a message copied
by a workflow): it is parsed strictly, and its account must still be one this bot is configured for.

A click is admitted before the ack (admission.py); one turned away is told so privately through the
response URL. The background work first makes sure the click is not a replay (dedupe.py).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond

from checks.diagnose import NameNotFoundError
from handlers.diagnosis import AccountError, reason_of, resolve_account
from handlers.render.changes import RerunRequest, parse_rerun_value
from handlers.render.escape import escape
from handlers.render.texts import not_found_text
from handlers.slack.admission import Refused, Ticket
from handlers.slack.alert_threads import alert_thread, recheck_alert, source_of
from handlers.slack.deps import Deps
from handlers.slack.gate import ack_admitted, admit, ours
from handlers.slack.posting import respond_text
from handlers.slack.reporting import Request, answer_privately, post_progress, publish

log = logging.getLogger(__name__)

AlertClick = Literal["handled", "other source", "no"]  # what a click in an automatic post's thread is

BAD_VALUE = (
    "This Re-run button is not one purview-bot can read (it may be from an older version); "
    "run the command again."
)


class RerunAction:
    """The Re-run button: `handle` acks in the request and leaves `run` to a background task."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def handle(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        context: AsyncBoltContext,
        respond: AsyncRespond,
    ) -> None:
        deps = self._deps
        deps.metrics.command("rerun")
        channel = _channel(body)
        admitted = admit(deps, (body.get("user") or {}).get("id"), channel or None)
        await ack_admitted(ack, admitted)
        if isinstance(admitted, Refused):
            deps.background.spawn(self._turn_away(body, respond, admitted), "rerun")
        else:
            deps.background.spawn(self.run(body, action, context, respond, admitted), "rerun")

    async def run(
        self,
        body: dict[str, Any],
        action: dict[str, Any],
        context: AsyncBoltContext,
        respond: AsyncRespond,
        ticket: Ticket | None = None,
    ) -> None:
        try:
            if await ours(self._deps, body):
                await self._run(body, action, context, respond, ticket)
        except Exception as error:
            log.exception("Re-run failed")
            await _try_respond(respond, f"⚠️ purview-bot could not finish: {escape(reason_of(error))}")
        finally:
            if ticket is not None:
                ticket.release()

    async def _turn_away(self, body: dict[str, Any], respond: AsyncRespond, refused: Refused) -> None:
        """Only the clicker hears that the bot will not take this now."""
        if await ours(self._deps, body):
            await _try_respond(respond, refused.text)

    async def _run(
        self,
        body: dict[str, Any],
        action: dict[str, Any],
        context: AsyncBoltContext,
        respond: AsyncRespond,
        ticket: Ticket | None,
    ) -> None:
        deps = self._deps
        container = body.get("container") or {}
        channel = _channel(body)
        user = (body.get("user") or {}).get("id")
        refusal = await deps.access.refusal(deps.client, channel, user)
        if refusal:
            await respond_text(respond, escape(refusal))
            return
        alert = await self._in_alert_thread(body, action, context, respond, ticket)
        if alert == "handled":
            return
        try:
            rerun = parse_rerun_value(action.get("value"))
            account = resolve_account(rerun.account, deps.service.accounts)
        except AccountError as error:
            await respond_text(respond, str(error))
            return
        except ValueError as error:
            log.warning("Re-run value refused: %s", error)
            await respond_text(respond, escape(BAD_VALUE))
            return
        request = Request(rerun.source, account, rerun.scan, user)
        release = ticket.release if ticket else None
        if container.get("is_ephemeral") or not channel:
            async with deps.runner.slots.turn(on_release=release):
                await answer_privately(deps, request, respond, rerun)
            return
        message = body.get("message") or {}
        thread_ts = str(message.get("thread_ts") or container.get("thread_ts") or container.get("message_ts"))
        bot_user = context.bot_user_id
        if alert == "other source":  # another report in an alert thread: never the alert's parent
            summary_ts = await post_progress(deps, request, channel=channel, thread_ts=thread_ts)
        else:
            summary_ts = await self._summary_message(request, channel, thread_ts, message, bot_user)
        # the click is answered now ("Re-checking… requested by"), then waits for a diagnosis slot inside
        # publish, which also turns the parent into "interrupted" if a shutdown comes first
        try:
            await publish(
                deps,
                request,
                channel=channel,
                summary_ts=summary_ts,
                thread_ts=thread_ts,
                previous=rerun,
                respond=respond,
                on_release=release,
            )
        except NameNotFoundError as error:  # renamed or deleted since the report
            await respond_text(respond, not_found_text(error))

    async def _in_alert_thread(
        self,
        body: dict[str, Any],
        action: dict[str, Any],
        context: AsyncBoltContext,
        respond: AsyncRespond,
        ticket: Ticket | None,
    ) -> AlertClick:
        """A click in an automatic post's thread (or on its parent): re-check that post's sources and
        answer in its thread, never editing the parent (its metadata is the restart dedupe's). The
        parent's own button re-checks all of them; a Re-run button naming one of them re-checks that one
        ("handled"); a Re-run of another source's report there is left to the caller ("other source")."""
        deps = self._deps
        container = body.get("container") or {}
        channel = _channel(body)
        message = body.get("message") or {}
        if container.get("is_ephemeral") or not channel:
            return "no"
        if message.get("parent_user_id") not in (None, context.bot_user_id):
            return "no"  # someone else's thread: not an automatic post
        thread_ts = str(message.get("thread_ts") or container.get("thread_ts") or container.get("message_ts"))
        thread = await alert_thread(deps, channel, thread_ts)
        if thread is None:
            return "no"
        previous: RerunRequest | None
        try:
            previous = parse_rerun_value(action.get("value"))
        except ValueError:
            previous = None  # the parent's Re-check: no earlier report of this button
        if previous is not None:
            narrowed = source_of(thread, previous)
            if narrowed is None:
                return "other source"
            thread = narrowed
        user = (body.get("user") or {}).get("id")
        release = ticket.release if ticket else None
        await recheck_alert(deps, thread, user, previous=previous, respond=respond, on_release=release)
        return "handled"

    async def _summary_message(
        self, request: Request, channel: str, thread_ts: str, message: dict[str, Any], bot_user_id: str | None
    ) -> str:
        """The message to turn into the new summary: the thread's parent when the bot posted it (a slash
        command's report), else (a mention's thread, someone else's parent) a new message in the thread."""
        parent_user = message.get("parent_user_id")
        if parent_user is None or parent_user == bot_user_id:
            return thread_ts
        return await post_progress(self._deps, request, channel=channel, thread_ts=thread_ts)


def _channel(body: dict[str, Any]) -> str:
    container = body.get("container") or {}
    return str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")


async def _try_respond(respond: AsyncRespond, text: str) -> None:
    """An ephemeral answer through response_url; `text` must already be escaped. Never raises."""
    try:
        await respond_text(respond, text)
    except Exception:
        log.exception("could not answer through response_url")
