"""The Slack side every listener shares: post "Checking…", diagnose (handlers.diagnosis), publish.

Slash command, mention, Re-run and recheck differ only in where the report goes; the rules are the same:
unknown names are answered to the asker alone, a diagnosis that fails or hangs still ends its "Checking…"
message, and every text from the user or Purview is escaped.

A Re-check (the button, or `recheck`) first turns the parent into "Re-checking… requested by @dana", then
edits it into the new verdict, edits the earlier findings messages in place, and replies with what
changed ("Fixed: …" / "No change (checked by @dana)").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from checks.accounts import AccountRef
from checks.diagnose import NameNotFoundError
from checks.model import Report
from handlers.render.blocks import Message, progress_message, summary_message, thread_messages
from handlers.render.changes import Changes, RerunRequest, rerun_value
from handlers.render.escape import code
from handlers.render.findings import changes_message
from handlers.render.summary import context
from handlers.render.texts import failure_message, failure_text, interrupted_message, not_found_text
from handlers.slack.deps import Deps
from handlers.slack.last_report import changes_for, remember
from handlers.slack.posting import (
    Respond,
    edit_message,
    findings_in_thread,
    findings_metadata,
    finish_report,
    missing_text,
    post_message,
    post_thread,
    replace_thread,
    report_metadata,
    respond_report,
    respond_text,
    summary_in_thread,
    update_message,
)
from handlers.slack.posting import failure_text as slack_failure

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """One diagnosis to run: names as configured in Purview, and who asked."""

    source: str
    account: str
    scan: str | None
    user_id: str | None

    @property
    def account_name(self) -> str:
        return AccountRef(self.account).name


async def requester_email(client: AsyncWebClient, user_id: str | None) -> str | None:
    """The Slack user's email (scope users:read.email), which the checks use as their Entra UPN."""
    if not user_id:
        return None
    try:
        response = await client.users_info(user=user_id)
        profile = (response.get("user") or {}).get("profile") or {}
        email = profile.get("email")
    except Exception as error:  # optional: whatever Slack answered, the check then says it does not know
        log.warning("users.info for the requester failed: %s", type(error).__name__)
        return None
    return str(email) if isinstance(email, str) and email else None


async def diagnose(deps: Deps, request: Request) -> Report:
    """The report, counted; raises NameNotFoundError, TimeoutError or whatever broke."""
    email = await requester_email(deps.client, request.user_id)
    return await deps.runner.run(
        request.source, account=request.account, scan=request.scan, requester_email=email
    )


def report_messages(
    report: Report, request: Request, changes: Changes | None = None
) -> tuple[Message, list[Message]]:
    """The summary (for the parent, with its buttons) and the thread replies, the last ending with
    Re-check; each thread reply carries metadata naming its page, for a Re-check to edit it."""
    value = rerun_value(report, scan=request.scan)
    thread = thread_messages(report, rerun_value=value, changes=changes)
    pages = [
        {**message, "metadata": findings_metadata(request.source, request.account, request.scan, index)}
        for index, message in enumerate(thread)
    ]
    return summary_message(report, rerun_value=value), pages


async def post_progress(
    deps: Deps, request: Request, *, channel: str, thread_ts: str | None, rechecking: bool = False
) -> str:
    """The "Checking SOURCE…" message carrying the report's metadata ("Re-checking… requested by" for a
    Re-check); returns its ts."""
    requester = (request.user_id or "") if rechecking else None
    progress = progress_message(request.source, request.account_name, requester=requester)
    return await post_message(
        deps.client,
        channel=channel,
        thread_ts=thread_ts,
        text=progress["text"],
        blocks=progress["blocks"],
        metadata=report_metadata(request.source, request.account, request.scan),
    )


async def publish(
    deps: Deps,
    request: Request,
    *,
    channel: str,
    summary_ts: str,
    thread_ts: str,
    previous: RerunRequest | None = None,
    respond: Respond | None = None,
    on_release: Callable[[], None] | None = None,
) -> None:
    """Diagnose, turn the "Checking…" message at `summary_ts` into the summary, findings into the thread.

    A Re-check (`previous`) says "Re-checking… requested by" before waiting for a diagnosis slot, so a
    click is answered at once even when every slot is busy; a shutdown while it waits turns the parent
    into "interrupted" like any other cut-short report. The slot is taken here (re-entrant: a caller
    holding one does not wait twice); `on_release` is called when it is given back.

    The findings start with what changed: since the run of the Re-run button (`previous`), else since
    the source's last report in the store; the report is then saved as the last one. A failure still
    ends the "Checking…" message ("could not finish: …"); NameNotFoundError is re-raised for the caller
    to answer privately (and to remove the message). Slack failing part-way is handled by
    `posting.finish_report`: a failed update brings the summary into the thread, each reply is posted on
    its own, and what was lost is said in the thread or to the asker through `respond` (response_url).
    """
    metadata = report_metadata(request.source, request.account, request.scan)

    async def update(message: Message) -> None:
        await update_message(
            deps.client,
            channel=channel,
            ts=summary_ts,
            text=message["text"],
            blocks=message["blocks"],
            metadata=metadata,
        )
        interrupted.cancel()  # the parent no longer says "Checking…"

    async def finish(message: Message, replies: list[Message]) -> None:
        await finish_report(
            deps.client,
            channel=channel,
            summary_ts=summary_ts,
            thread_ts=thread_ts,
            summary=message,
            thread=replies,
            metadata=metadata,
            respond=respond,
        )
        interrupted.cancel()  # finished: the summary is in the parent or in the thread

    # a shutdown that cuts this short turns the parent into "interrupted by a restart" (with Re-check)
    interrupted = deps.background.on_interrupt(
        lambda: update(interrupted_message(request.source, request.account, request.scan, previous))
    )
    if previous is not None:
        await _rechecking(deps, request, channel=channel, ts=summary_ts, metadata=metadata)
    try:
        async with deps.runner.slots.turn(on_release=on_release):
            report = await diagnose(deps, request)
    except NameNotFoundError:
        if previous is not None:  # the parent says "Re-checking…": it must not stay so
            await finish(failure_message(request.source, "no longer found in Purview"), [])
        raise
    except Exception as error:
        log.exception("diagnosis of %s in %s failed", request.source, request.account_name)
        await finish(failure_message(request.source, deps.runner.reason(error)), [])
        return
    changes = await changes_for(deps, report, previous)
    if previous is None or changes is None:
        summary, thread = report_messages(report, request, changes)
        await finish(summary, thread)
    else:
        await _finish_recheck(
            deps,
            request,
            report,
            changes,
            channel=channel,
            summary_ts=summary_ts,
            thread_ts=thread_ts,
            metadata=metadata,
            respond=respond,
        )
        interrupted.cancel()
    await remember(deps, report)


async def _rechecking(
    deps: Deps, request: Request, *, channel: str, ts: str, metadata: dict[str, object]
) -> None:
    """The clicked report's parent says at once who asked for the Re-check; never raises."""
    message = progress_message(request.source, request.account_name, requester=request.user_id or "")
    await edit_message(
        deps.client,
        channel=channel,
        ts=ts,
        message=message,
        metadata=metadata,
        failing="could not say 'Re-checking'",
    )


async def _finish_recheck(
    deps: Deps,
    request: Request,
    report: Report,
    changes: Changes,
    *,
    channel: str,
    summary_ts: str,
    thread_ts: str,
    metadata: dict[str, object],
    respond: Respond | None,
) -> None:
    """The parent becomes the new verdict, the earlier findings are edited in place, and one reply says
    what changed (with Re-check). Without earlier findings to edit (the thread cannot be read, or they
    are gone) the findings are posted after that reply, as for a first check."""
    summary, thread = report_messages(report, request)
    diff = changes_message(
        changes, report, rerun_value=rerun_value(report, scan=request.scan), requester=request.user_id
    )
    old = await findings_in_thread(
        deps.client, channel=channel, thread_ts=thread_ts, source=request.source, account=request.account
    )
    if not old:
        await finish_report(
            deps.client,
            channel=channel,
            summary_ts=summary_ts,
            thread_ts=thread_ts,
            summary=summary,
            thread=[diff, *thread],
            metadata=metadata,
            respond=respond,
        )
        return
    replies: list[Message] = [diff]
    if await edit_message(deps.client, channel=channel, ts=summary_ts, message=summary, metadata=metadata):
        replies.insert(0, summary_in_thread(summary, "Slack refused the edit"))
    stale = await replace_thread(deps.client, channel=channel, thread_ts=thread_ts, old=old, messages=thread)
    if stale:
        note = missing_text(len(stale), len(thread), slack_failure(stale[0][1])).replace(
            "could not be posted", "could not be updated"
        )
        diff = {**diff, "blocks": [*diff["blocks"], context(note)]}
        replies[-1] = diff
    failures = await post_thread(deps.client, channel=channel, thread_ts=thread_ts, messages=replies)
    if failures and respond is not None:
        try:
            await respond_text(
                respond, f"⚠️ The re-check of {code(request.source)} could not be posted in the thread."
            )
        except Exception:
            log.exception("could not answer through response_url")


async def answer_privately(
    deps: Deps, request: Request, respond: AsyncRespond, rerun: RerunRequest | None = None
) -> None:
    """The bot cannot post in the channel (or the button sits in a private report): the report goes to
    the asker through `response_url`, compared with the button's run or the last stored report."""
    try:
        report = await diagnose(deps, request)
    except NameNotFoundError as error:
        await respond_text(respond, not_found_text(error))
        return
    except Exception as error:
        log.exception("diagnosis of %s failed", request.source)
        await respond_text(respond, failure_text(request.source, deps.runner.reason(error)))
        return
    summary, thread = report_messages(report, request, await changes_for(deps, report, rerun))
    await respond_report(respond, summary, thread)
    await remember(deps, report)
