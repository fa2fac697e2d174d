"""The steps every entry point shares: resolve the names, diagnose under a deadline, publish the report.

Slash command, mention, Re-run and recheck differ only in where the report goes; the rules are the same:
unknown names are answered to the asker alone, a diagnosis that fails or hangs still ends its "Checking…"
message, and every text from the user or Purview is escaped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from checks.diagnose import NameNotFoundError
from checks.model import Report
from handlers.blocks import Message, progress_message, summary_message, thread_messages
from handlers.changes import Changes, RerunRequest, rerun_value
from handlers.deps import Deps
from handlers.escape import code, escape, truncate
from handlers.last_report import changes_for, remember
from handlers.posting import (
    post_message,
    post_thread,
    report_metadata,
    respond_report,
    respond_text,
    update_message,
)

log = logging.getLogger(__name__)

# beyond the diagnosis's own deadline (which makes late checks `unknown`): time to assemble the report
GRACE_SECONDS = 15.0
REASON_LIMIT = 500


class AccountError(ValueError):
    """The ACCOUNT argument is not one of the configured accounts; the message lists them (escaped)."""


@dataclass(frozen=True)
class Request:
    """One diagnosis to run: names as configured in Purview, and who asked."""

    source: str
    account: str
    scan: str | None
    user_id: str | None

    @property
    def account_name(self) -> str:
        return account_name(self.account)


def account_name(account: str) -> str:
    """`PURVIEW_ACCOUNTS` entries may be ARM ids: the account's name is the last segment."""
    return account.rstrip("/").rsplit("/", 1)[-1]


def resolve_account(requested: str | None, accounts: Sequence[str]) -> str:
    """The configured entry for `requested` (its name or ARM id, any case); the default when None."""
    if not accounts:
        raise AccountError("No Purview account is configured (PURVIEW_ACCOUNTS).")
    if requested is None:
        return accounts[0]
    for account in accounts:
        if requested.lower() in (account.lower(), account_name(account).lower()):
            return account
    names = ", ".join(code(account_name(a)) for a in accounts)
    raise AccountError(f"No Purview account {code(requested)} here. The accounts are: {names}.")


async def resolve_source(deps: Deps, source: str, account: str, scan: str | None = None) -> str:
    """The source's name as Purview spells it (and the scan, when given, checked to exist), before
    anything is posted in a channel.

    Raises NameNotFoundError with the closest names. When Purview cannot answer, the name is kept as
    typed and the diagnosis itself reports what it could not read.
    """
    try:
        return await deps.service.resolve(source, account=account, scan=scan)
    except NameNotFoundError:
        raise
    except Exception as error:
        log.warning("checking the name %s in %s failed: %s", source, account_name(account), error)
        return source


def not_found_text(error: NameNotFoundError) -> str:
    hint = f" Did you mean: {', '.join(code(s) for s in error.suggestions)}?" if error.suggestions else ""
    return f"No {escape(error.what)} named {code(error.name)}.{hint}"


def failure_text(source: str, reason: str) -> str:
    return f"⚠️ {code(source)}: could not finish: {truncate(escape(reason), REASON_LIMIT)}"


def failure_message(source: str, reason: str) -> Message:
    text = failure_text(source, reason)
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def reason_of(error: BaseException, deadline_seconds: float | None = None) -> str:
    """One line for the user: what broke (the traceback goes to the log)."""
    if isinstance(error, TimeoutError):
        if deadline_seconds is None:
            return "timed out"
        return f"no answer within {deadline_seconds + GRACE_SECONDS:.0f} s"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


async def requester_email(client: AsyncWebClient, user_id: str | None) -> str | None:
    """The Slack user's email (scope users:read.email), which the checks use as their Entra UPN."""
    if not user_id:
        return None
    try:
        response = await client.users_info(user=user_id)
    except SlackApiError:  # logged and counted by the client; the check then says it does not know
        return None
    profile = (response.get("user") or {}).get("profile") or {}
    email = profile.get("email")
    return str(email) if email else None


async def diagnose(deps: Deps, request: Request) -> Report:
    """The report, counted; raises NameNotFoundError, TimeoutError or whatever broke."""
    email = await requester_email(deps.client, request.user_id)
    try:
        async with asyncio.timeout(deps.deadline_seconds + GRACE_SECONDS):
            report = await deps.service.diagnose(
                request.source, account=request.account, scan=request.scan, requester_email=email
            )
    except NameNotFoundError:
        raise
    except Exception:
        deps.metrics.diagnosis_failed()
        raise
    deps.metrics.diagnosis(report)
    return report


def report_messages(
    report: Report, request: Request, changes: Changes | None = None
) -> tuple[Message, list[Message]]:
    """The summary (for the parent) and the thread replies, the last with the Re-run button."""
    thread = thread_messages(report, rerun_value=rerun_value(report, scan=request.scan), changes=changes)
    return summary_message(report), thread


async def post_progress(deps: Deps, request: Request, *, channel: str, thread_ts: str | None) -> str:
    """The "Checking SOURCE…" message carrying the report's metadata; returns its ts."""
    progress = progress_message(request.source, request.account_name)
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
) -> None:
    """Diagnose, turn the "Checking…" message at `summary_ts` into the summary, findings into the thread.

    The findings start with what changed: since the run of the Re-run button (`previous`), else since
    the source's last report in the store; the report is then saved as the last one. A failure still
    ends the "Checking…" message ("could not finish: …"); NameNotFoundError is re-raised for the caller
    to answer privately (and to remove the message).
    """
    metadata = report_metadata(request.source, request.account, request.scan)
    try:
        report = await diagnose(deps, request)
    except NameNotFoundError:
        raise
    except Exception as error:
        log.exception("diagnosis of %s in %s failed", request.source, request.account_name)
        failed = failure_message(request.source, reason_of(error, deps.deadline_seconds))
        await update_message(
            deps.client,
            channel=channel,
            ts=summary_ts,
            text=failed["text"],
            blocks=failed["blocks"],
            metadata=metadata,
        )
        return
    changes = await changes_for(deps, report, previous)
    summary, thread = report_messages(report, request, changes)
    await update_message(
        deps.client,
        channel=channel,
        ts=summary_ts,
        text=summary["text"],
        blocks=summary["blocks"],
        metadata=metadata,
    )
    await post_thread(deps.client, channel=channel, thread_ts=thread_ts, messages=thread)
    await remember(deps, report)


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
        await respond_text(respond, failure_text(request.source, reason_of(error, deps.deadline_seconds)))
        return
    summary, thread = report_messages(report, request, await changes_for(deps, report, rerun))
    await respond_report(respond, summary, thread)
    await remember(deps, report)
