"""`/purview-check`: decide and ack within the request (pure, no I/O), then do the work in the background.

The ack is the only thing Slack waits for (3 s), so `decide` parses the text, applies the channel and
account rules, admits the work or turns it away (the bound on work in progress, the rates per user and
per channel: `admission.py`) and the ack answers ephemerally; `run` (a background task started after the
ack) first makes sure the delivery is not a replay another replica took (`dedupe.py`), then carries that
same decision out, talking to Slack and Azure. A check waits for its diagnosis slot before looking the
source up, so the lookups, the diagnosis and nothing else count against the bound.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError

from checks.accounts import AccountRef
from checks.diagnose import NameNotFoundError
from handlers.diagnosis import AccountError, reason_of, resolve_account
from handlers.render.blocks import progress_text
from handlers.render.escape import code, escape, escape_quoted
from handlers.render.runs import runs_text, sources_text
from handlers.render.texts import not_found_text
from handlers.slack.access import CHANNEL_REFUSED
from handlers.slack.admission import Refused, Ticket
from handlers.slack.changes_command import answer_changes
from handlers.slack.deps import Deps
from handlers.slack.gate import ack_admitted, admit, ours
from handlers.slack.parse import (
    USAGE,
    AddWatch,
    Check,
    Command,
    Help,
    ListSources,
    ListWatches,
    MuteSource,
    RemoveWatch,
    Runs,
    UnmuteSource,
    UsageError,
    WhatChanged,
    parse_command,
)
from handlers.slack.posting import ChannelUnreachable, respond_text
from handlers.slack.reporting import Request, answer_privately, post_progress, publish
from handlers.slack.watch_commands import WatchCommands, channel_ref, scope_text

log = logging.getLogger(__name__)

# the kinds of command that read Azure: admitted (or turned away) in the ack
ADMITTED_KINDS = frozenset({"check", "runs", "list", "changes"})


@dataclass(frozen=True)
class Decision:
    """What the ack says, what kind of command it was (for the metrics), and the work left, if any."""

    ack_text: str
    kind: str
    work: Command | None = None
    account: str | None = None  # resolved for Check, Runs and the watch commands


def usage_text(problem: str | None = None) -> str:
    return f"{escape_quoted(problem)}\n\n{USAGE}" if problem else USAGE


def decide(payload: dict[str, Any], deps: Deps) -> Decision:
    """The decision for one slash command payload; pure, so it can be made before the ack."""
    if not deps.access.channel_allowed(payload.get("channel_id")):
        return Decision(CHANNEL_REFUSED, "refused")
    try:
        command = parse_command(str(payload.get("text") or ""))
    except UsageError as error:
        return Decision(usage_text(str(error)), "invalid")
    if isinstance(command, Help):
        return Decision(usage_text(), "help")
    if isinstance(command, ListSources):
        return Decision("Listing the data sources…", "list", command)
    if isinstance(command, ListWatches):
        whose = "every channel's" if command.every else "this channel's"
        return Decision(f"Reading {whose} watches…", "watches", command)
    try:
        account = resolve_account(command.account, deps.service.accounts)
    except AccountError as error:
        if not (isinstance(command, RemoveWatch) and command.account):
            return Decision(str(error), "invalid")  # already escaped
        account = command.account  # a watch of an account configured no more can still be removed
    if isinstance(command, Runs):
        return Decision(f"Reading the latest runs of {escape(command.source)}…", "runs", command, account)
    if isinstance(command, WhatChanged):
        return Decision(f"Reading what changed on {escape(command.source)}…", "changes", command, account)
    if isinstance(command, MuteSource):
        return Decision(f"Muting {code(command.source)}…", "mute", command, account)
    if isinstance(command, UnmuteSource):
        return Decision(f"Unmuting {code(command.source)}…", "unmute", command, account)
    if isinstance(command, AddWatch | RemoveWatch):
        scope = scope_text(account, command.collection, command.source)
        if isinstance(command, AddWatch):
            return Decision(f"Adding a watch of {scope} to this channel…", "watch", command, account)
        whose = f"{channel_ref(command.channel)}'s" if command.channel else "this channel's"
        return Decision(f"Removing {whose} watch of {scope}…", "unwatch", command, account)
    return Decision(progress_text(command.source), "check", command, account)


class SlashCommand:
    """`/purview-check`: `handle` acks in the request and leaves `run` to a background task."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._watches = WatchCommands(deps, deps.watch_policy)

    async def handle(self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        deps = self._deps
        decision = decide(command, deps)
        deps.metrics.command(decision.kind)
        ticket: Ticket | None = None
        if decision.kind in ADMITTED_KINDS:
            admitted = admit(deps, command.get("user_id"), command.get("channel_id"))
            if isinstance(admitted, Refused):  # said in the ack; nothing posted, nothing started
                await ack(text=admitted.text, response_type="ephemeral")
                return
            ticket = admitted
        await ack_admitted(ack, ticket, text=decision.ack_text, response_type="ephemeral")
        if decision.work is not None:
            deps.background.spawn(self.run(decision, command, respond, ticket), "slash-command")

    async def run(
        self,
        decision: Decision,
        command: dict[str, Any],
        respond: AsyncRespond,
        ticket: Ticket | None = None,
    ) -> None:
        """The work the ack announced; every failure is answered to the asker, never raised."""
        try:
            if await ours(self._deps, command):
                await self._run(decision, command, respond, ticket)
        finally:
            if ticket is not None:
                ticket.release()

    async def _run(
        self, decision: Decision, command: dict[str, Any], respond: AsyncRespond, ticket: Ticket | None
    ) -> None:
        deps = self._deps
        channel = str(command.get("channel_id") or "")
        user = command.get("user_id")
        account = decision.account or ""
        try:
            refusal = await deps.access.refusal(deps.client, channel, user)
            if refusal:
                await respond_text(respond, escape(refusal))
                return
            match decision.work:
                case AddWatch() as work:
                    await respond_text(respond, await self._watches.add(work, account, channel))
                case RemoveWatch() as work:
                    await respond_text(respond, await self._watches.remove(work, account, channel, user))
                case ListWatches() as work:
                    await respond_text(respond, await self._watches.show(channel, every=work.every))
                case MuteSource() as work:
                    await respond_text(respond, await self._watches.mute(work, account, channel, user))
                case UnmuteSource() as work:
                    await respond_text(respond, await self._watches.unmute(work, account, channel, user))
                case ListSources() as work:
                    await self._list(work, respond)
                case Runs() as work:
                    await self._runs(work, account, respond)
                case WhatChanged() as work:
                    await answer_changes(self._deps, work, account, respond)
                case Check() as work:
                    request = Request(work.source, account, work.scan, user)
                    await self._check(request, channel, respond, ticket)
        except Exception as error:  # the user hears of it; the log has the details
            log.exception("/purview-check %r failed", command.get("text"))
            await _try_respond(respond, f"⚠️ purview-bot could not finish: {escape(reason_of(error))}")

    async def _list(self, work: ListSources, respond: AsyncRespond) -> None:
        parts = []
        for account in self._deps.service.accounts:
            try:
                sources = await self._deps.service.data_sources(account)
            except Exception as error:
                log.warning("listing data sources of %s failed: %s", account, error)
                parts.append(
                    f"Could not list the data sources of {code(AccountRef(account).name)}: "
                    f"{escape(reason_of(error))}"
                )
                continue
            parts.append(sources_text(AccountRef(account).name, sources, work.filter))
        await respond_text(respond, "\n\n".join(parts) or "No Purview account is configured.")

    async def _runs(self, work: Runs, account: str, respond: AsyncRespond) -> None:
        try:
            scans = await self._deps.service.scan_runs(work.source, account)
        except NameNotFoundError as error:
            await respond_text(respond, not_found_text(error))
            return
        text = runs_text(work.source, AccountRef(account).name, scans, self._deps.docs_url)
        await respond_text(respond, text)

    async def _check(
        self, request: Request, channel: str, respond: AsyncRespond, ticket: Ticket | None
    ) -> None:
        deps = self._deps
        # the turn: wait for a diagnosis slot, then the name lookup, the "Checking…" parent, the asker's
        # email and the diagnosis (whose deadline starts only then); the slot is given back when the
        # diagnosis ends, before the findings are posted, and the command leaves the queue then
        async with deps.runner.slots.turn(on_release=ticket.release if ticket else None):
            try:
                resolved = await deps.runner.resolve_source(request.source, request.account, request.scan)
                request = dataclasses.replace(request, source=resolved)
            except NameNotFoundError as error:
                await respond_text(respond, not_found_text(error))
                return
            try:
                parent = await post_progress(deps, request, channel=channel, thread_ts=None)
            except ChannelUnreachable:
                await answer_privately(deps, request, respond)
                return
            try:
                await publish(
                    deps, request, channel=channel, summary_ts=parent, thread_ts=parent, respond=respond
                )
            except NameNotFoundError as error:  # a --scan name Purview does not have
                await _try_delete(deps, channel, parent)
                await respond_text(respond, not_found_text(error))


async def _try_delete(deps: Deps, channel: str, ts: str) -> None:
    try:
        await deps.client.chat_delete(channel=channel, ts=ts)
    except SlackApiError:  # logged and counted by the client
        pass


async def _try_respond(respond: AsyncRespond, text: str) -> None:
    try:
        await respond_text(respond, text)
    except Exception:
        log.exception("could not answer through response_url")
