"""Posting reports to Slack so that they are never lost and never posted twice.

- `post_message` gives every post a unique id in its metadata (`event_payload.post_id`). After an answer
  that may hide a stored message (a 5xx, no answer) it looks for that id in the channel's recent history
  (a thread's replies for a reply) before posting again; the Web API client never retries such a post
  itself (`bot.slack_client`). `not_in_channel` → `conversations.join` and once more.
- `finish_report` turns the "Checking…" message into the summary and posts the findings in its thread,
  each message on its own: a failed update still brings the summary into the thread, a failed reply does
  not stop the others, and what could not be posted is said in the thread, or privately through the
  response_url when the thread takes nothing.
- `history` reads a channel's (or a thread's) recent messages with their metadata: the lookup above and
  the watcher's search for a parent posted before a restart (`WatchPublisher.find_posted`).

Slack API errors are logged with their method and counted by the Web API client itself
(`bot.slack_client.ObservedWebClient`); here only the errors that change what to do are handled.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from handlers.render.escape import code
from handlers.render.summary import RERUN_ACTION_ID

log = logging.getLogger(__name__)

REPORT_EVENT = "purview_report"
FINDINGS_EVENT = "purview_findings"  # a findings message of a report: a Re-check edits it in place
POST_EVENT = "purview_post"  # the metadata of a post that carries nothing else than its id
POST_ID = "post_id"
# error codes the Web API client gives a call Slack did not answer (HTTP status 0)
UNREACHABLE = "slack_unreachable"  # no connection: the request was not sent
NO_ANSWER = "no_answer"  # sent, and no answer (a timeout, a dropped connection): Slack may have acted
INVITE_HINT = (
    "I can't post in this channel (it is private, or I was removed). Invite me with `/invite @purview-bot` "
    "and run the command again; meanwhile here is the report, visible only to you."
)
# response_url accepts 5 answers in 30 minutes: the fallback keeps one for the hint and the summary
MAX_FALLBACK_MESSAGES = 4
# after an answer that may hide a stored post: wait, look for it, post again; then once more
LOOKUP_DELAYS = (0.5, 1.0)
HISTORY_PAGES = 5  # of 200 messages
HISTORY_MARGIN = 120.0  # seconds before the first attempt the lookup reads from (clock skew)

Message = dict[str, Any]  # {"text": str, "blocks": list[dict]}
Respond = Callable[..., Awaitable[Any]]


class ChannelUnreachable(Exception):
    """The bot cannot post in the channel (private and not invited, or archived)."""


def slack_error(error: SlackApiError) -> str:
    data = getattr(error.response, "data", None)
    code_ = data.get("error") if isinstance(data, dict) else None
    return str(code_ or "unknown_error")


def _status(error: SlackApiError) -> int:
    status = getattr(error.response, "status_code", 0)
    return status if isinstance(status, int) else 0


def retry_after_seconds(value: str | None) -> float:
    """A `Retry-After` header's seconds (1 when absent or unreadable, as slack-sdk assumes)."""
    try:
        seconds = float(value) if value is not None else 1.0
    except ValueError:
        return 1.0
    if math.isnan(seconds):
        return 1.0
    return min(max(0.0, seconds), 86_400.0)


def _retry_after(error: SlackApiError) -> float:
    headers = getattr(error.response, "headers", None) or {}
    for key, value in headers.items():
        if str(key).lower() == "retry-after":
            return retry_after_seconds(str(value[0] if isinstance(value, list) and value else value))
    return retry_after_seconds(None)


def may_have_posted(error: BaseException) -> bool:
    """True when Slack may have acted on the call despite the failure: a 5xx, or no answer at all."""
    if isinstance(error, SlackApiError):
        return _status(error) >= 500 or slack_error(error) == NO_ANSWER
    if isinstance(error, aiohttp.ClientConnectorError):
        return False
    return isinstance(error, aiohttp.ClientError | TimeoutError)


def failure_text(error: BaseException) -> str:
    """Why a Slack call failed, for a user (mrkdwn, escaped): never a URL, host or port."""
    if isinstance(error, ChannelUnreachable):
        return "the bot cannot post in this channel"
    if isinstance(error, SlackApiError):
        code_, status = slack_error(error), _status(error)
        if code_ in (NO_ANSWER, UNREACHABLE):
            return "Slack did not answer"
        if status == 429 or code_ == "ratelimited":
            return f"Slack is rate-limiting the bot (it asked to wait {_retry_after(error):.0f} s)"
        if status >= 500 or code_.startswith("http_"):
            return f"Slack had an error (HTTP {status})"
        return f"Slack answered {code(code_)}"
    if isinstance(error, aiohttp.ClientError | TimeoutError):
        return "Slack did not answer"
    return "an unexpected error (see the bot's log)"


def report_metadata(source: str, account: str, scan: str | None) -> dict[str, Any]:
    """The parent message's metadata; Slack payload values cannot be null, so no scan is ""."""
    payload = {"source": source, "account": account, "scan": scan or ""}
    return {"event_type": REPORT_EVENT, "event_payload": payload}


def findings_metadata(source: str, account: str, scan: str | None, page: int) -> dict[str, Any]:
    """A findings message's metadata: which report and which of its pages, so a Re-check edits it."""
    payload = {"source": source, "account": account, "scan": scan or "", "page": page}
    return {"event_type": FINDINGS_EVENT, "event_payload": payload}


def with_post_id(metadata: dict[str, Any] | None, post_id: str) -> dict[str, Any]:
    """`metadata` with `post_id` added to its payload (a `purview_post` metadata when there is none)."""
    if metadata is None:
        return {"event_type": POST_EVENT, "event_payload": {POST_ID: post_id}}
    payload = metadata.get("event_payload")
    return {**metadata, "event_payload": {**(payload if isinstance(payload, dict) else {}), POST_ID: post_id}}


def post_id_of(message: dict[str, Any]) -> str | None:
    """The post id in a history message's metadata, if it has one."""
    metadata = message.get("metadata")
    payload = metadata.get("event_payload") if isinstance(metadata, dict) else None
    value = payload.get(POST_ID) if isinstance(payload, dict) else None
    return value if isinstance(value, str) else None


async def history(
    client: AsyncWebClient,
    channel: str,
    *,
    oldest: float,
    thread_ts: str | None = None,
    pages: int = HISTORY_PAGES,
) -> AsyncIterator[dict[str, Any]]:
    """The messages of `channel` since `oldest` (Unix seconds) with their metadata, newest first
    (`conversations.history`), or the replies of `thread_ts` oldest first (`conversations.replies`),
    `pages` pages of 200 at most. A history that cannot be read ends the iteration (logged)."""
    cursor: str | None = None
    for _ in range(pages):
        kwargs: dict[str, Any] = {
            "channel": channel,
            "oldest": f"{oldest:.6f}",
            "include_all_metadata": True,
            "limit": 200,
        }
        if cursor:
            kwargs["cursor"] = cursor
        try:
            if thread_ts is None:
                page = await client.conversations_history(**kwargs)
            else:
                page = await client.conversations_replies(ts=thread_ts, **kwargs)
        except SlackApiError as error:
            log.warning("cannot read the history of %s: %s", channel, slack_error(error))
            return
        for message in page.get("messages") or []:
            if isinstance(message, dict):
                yield message
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if cursor is None:
            return


async def find_post(
    client: AsyncWebClient, *, channel: str, post_id: str, oldest: float, thread_ts: str | None = None
) -> str | None:
    """The ts of the message carrying `post_id` in `channel` (or the thread), None when not there."""
    async for message in history(client, channel, oldest=oldest, thread_ts=thread_ts):
        if post_id_of(message) == post_id and message.get("ts"):
            return str(message["ts"])
    return None


async def post_message(
    client: AsyncWebClient,
    *,
    channel: str,
    text: str,
    blocks: Sequence[dict[str, Any]] | None = None,
    thread_ts: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> str:
    """Post once and return the message's ts (see the module's text).

    Raises ChannelUnreachable when the bot cannot get in (a private channel it was not invited to), the
    SlackApiError of the last attempt when Slack did not take the message.
    """
    post_id = uuid.uuid4().hex
    kwargs: dict[str, Any] = {"channel": channel, "text": text, "unfurl_links": False, "unfurl_media": False}
    if blocks is not None:
        kwargs["blocks"] = list(blocks)
    if thread_ts is not None:
        kwargs["thread_ts"] = thread_ts
    kwargs["metadata"] = with_post_id(metadata, post_id)
    since = time.time() - HISTORY_MARGIN
    for delay in (*LOOKUP_DELAYS, None):
        try:
            return await _post_joining(client, channel, kwargs)
        except Exception as error:
            if delay is None or not may_have_posted(error):
                raise
            log.warning("a post in %s may have been taken (%s): looking for it first", channel, error)
            await asyncio.sleep(delay)
            found = await find_post(
                client, channel=channel, post_id=post_id, oldest=since, thread_ts=thread_ts
            )
            if found is not None:
                log.info("the post in %s was taken (ts %s): not posted again", channel, found)
                return found
    raise AssertionError("unreachable")  # the last attempt returns or raises


async def _post_joining(client: AsyncWebClient, channel: str, kwargs: dict[str, Any]) -> str:
    """chat.postMessage; on `not_in_channel` join the (public) channel and post once more."""
    try:
        response = await client.chat_postMessage(**kwargs)
    except SlackApiError as error:
        if slack_error(error) == "channel_not_found":
            raise ChannelUnreachable(channel) from error
        if slack_error(error) != "not_in_channel":
            raise
        try:
            await client.conversations_join(channel=channel)
        except SlackApiError as join_error:
            raise ChannelUnreachable(channel) from join_error
        response = await client.chat_postMessage(**kwargs)
    return str(response["ts"])


async def update_message(
    client: AsyncWebClient,
    *,
    channel: str,
    ts: str,
    text: str,
    blocks: Sequence[dict[str, Any]] | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Replace a message the bot posted; the metadata is sent again so the message keeps it."""
    kwargs: dict[str, Any] = {"channel": channel, "ts": ts, "text": text, "blocks": list(blocks or [])}
    if metadata is not None:
        kwargs["metadata"] = metadata
    await client.chat_update(**kwargs)


async def edit_message(
    client: AsyncWebClient,
    *,
    channel: str,
    ts: str,
    message: Message,
    metadata: dict[str, Any] | None = None,
    failing: str = "could not be updated",
) -> Exception | None:
    """`update_message` with `message`, for callers that go on either way: the error, logged with
    "the report message TS in CHANNEL {failing}", is returned rather than raised."""
    try:
        await update_message(
            client, channel=channel, ts=ts, text=message["text"], blocks=message["blocks"], metadata=metadata
        )
    except Exception as error:
        log.warning("the report message %s in %s %s: %s", ts, channel, failing, error)
        return error
    return None


async def post_thread(
    client: AsyncWebClient, *, channel: str, thread_ts: str, messages: Sequence[Message]
) -> list[tuple[int, Exception]]:
    """The report's messages into the thread, in order (Slack orders replies by ts), each on its own:
    one that fails is logged (and counted by the client) and the next is still posted. Returns the
    failures as (index, error)."""
    failures: list[tuple[int, Exception]] = []
    for index, message in enumerate(messages):
        try:
            await post_message(
                client,
                channel=channel,
                thread_ts=thread_ts,
                text=message["text"],
                blocks=message.get("blocks"),
                metadata=message.get("metadata"),
            )
        except Exception as error:
            log.warning(
                "report message %d of %d in thread %s of %s not posted: %s",
                index + 1,
                len(messages),
                thread_ts,
                channel,
                error,
            )
            failures.append((index, error))
    return failures


def summary_in_thread(summary: Message, reason: str) -> Message:
    """The summary as a thread reply, saying why the message above still says "Checking…". Its Re-check
    button stays at the end of the findings (the reply is not the report's last message)."""
    note = f"⚠️ The message above could not be updated ({reason}); here is the summary."
    context = {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}
    blocks = [_without_rerun(b) for b in summary.get("blocks", [])]
    return {"text": summary["text"], "blocks": [*(b for b in blocks if b), context][:50]}


def _without_rerun(block: dict[str, Any]) -> dict[str, Any] | None:
    if block.get("type") != "actions":
        return block
    elements = [e for e in block.get("elements") or [] if e.get("action_id") != RERUN_ACTION_ID]
    return {**block, "elements": elements} if elements else None


def missing_text(failed: int, total: int, reason: str) -> str:
    return (
        f"⚠️ {failed} of the {total} messages of this report could not be posted ({reason}). "
        "Run the command again to see the whole report."
    )


async def finish_report(
    client: AsyncWebClient,
    *,
    channel: str,
    summary_ts: str,
    thread_ts: str,
    summary: Message,
    thread: Sequence[Message],
    metadata: dict[str, Any] | None = None,
    respond: Respond | None = None,
) -> None:
    """The "Checking…" message at `summary_ts` becomes `summary`, `thread` goes into `thread_ts`.

    A failed update brings the summary into the thread (and is tried once more at the end); each reply
    is posted on its own; what could not be posted is said in the thread, or through `respond` (the
    asker's response_url, when there is one) when that fails too or nothing reached the thread, in
    which case the report itself goes there. Never raises.
    """
    update_error = await edit_message(
        client, channel=channel, ts=summary_ts, message=summary, metadata=metadata
    )
    messages = list(thread)
    if update_error is not None:
        messages.insert(0, summary_in_thread(summary, failure_text(update_error)))
    failures = await post_thread(client, channel=channel, thread_ts=thread_ts, messages=messages)
    if update_error is not None:  # chat.update is idempotent: Slack may take it now
        await edit_message(
            client,
            channel=channel,
            ts=summary_ts,
            message=summary,
            metadata=metadata,
            failing="still could not be updated",
        )
    if not failures:
        return
    reason = failure_text(failures[0][1])
    if len(failures) == len(messages):
        head = f"⚠️ Slack did not take this report in the channel ({reason}); here it is, visible only to you."
        await _tell(respond, channel, lambda r: respond_report(r, summary, thread, head=head))
        return
    note = missing_text(len(failures), len(messages), reason)
    try:
        await post_message(client, channel=channel, thread_ts=thread_ts, text=note)
    except Exception as error:
        log.warning("the note on the missing report messages in %s could not be posted: %s", channel, error)
        await _tell(respond, channel, lambda r: respond_text(r, note))


async def _tell(respond: Respond | None, channel: str, send: Callable[[Respond], Awaitable[None]]) -> None:
    if respond is None:
        log.error("a report in %s is incomplete and there is no response_url to tell the asker", channel)
        return
    try:
        await send(respond)
    except Exception:
        log.exception("could not answer through response_url")


async def respond_report(
    respond: Respond, summary: Message, messages: Sequence[Message], *, head: str = INVITE_HINT
) -> None:
    """The report through the command's response_url (only the user sees it), after `head` (by default
    how to invite the bot)."""
    head_block = {"type": "section", "text": {"type": "mrkdwn", "text": head}}
    await respond(
        text=f"{head}\n{summary['text']}",
        blocks=[head_block, *summary.get("blocks", [])][:50],
        response_type="ephemeral",
        replace_original=False,
    )
    kept = list(messages)[:MAX_FALLBACK_MESSAGES]
    for message in kept:
        await respond(
            text=message["text"],
            blocks=message.get("blocks"),
            response_type="ephemeral",
            replace_original=False,
        )
    if len(messages) > len(kept):
        log.warning("response_url fallback: %d report messages not sent", len(messages) - len(kept))


async def respond_text(respond: Respond, text: str) -> None:
    """An ephemeral answer through response_url; `text` must already be escaped."""
    await respond(text=text, response_type="ephemeral", replace_original=False)


async def findings_in_thread(
    client: AsyncWebClient, *, channel: str, thread_ts: str, source: str, account: str
) -> list[str]:
    """The ts of the latest findings messages of `source` in the thread, page by page (empty when there
    are none, or the thread cannot be read: then a Re-check posts its findings anew)."""
    groups: list[list[str]] = []
    try:
        async for message in history(client, channel, oldest=0.0, thread_ts=thread_ts):
            _group_findings(message, source, account, groups)
    except Exception as error:  # unreadable (no answer, a dropped connection): post the findings anew
        log.warning("the findings in thread %s of %s could not be read: %s", thread_ts, channel, error)
        return []
    return groups[-1] if groups else []


def _group_findings(message: dict[str, Any], source: str, account: str, groups: list[list[str]]) -> None:
    """Add a findings message of `source` to `groups` (a new group at its page 0)."""
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != FINDINGS_EVENT:
        return
    payload = metadata.get("event_payload")
    if not isinstance(payload, dict) or (payload.get("source"), payload.get("account")) != (source, account):
        return
    if payload.get("page") == 0 or not groups:
        groups.append([])
    if message.get("ts"):
        groups[-1].append(str(message["ts"]))


async def replace_thread(
    client: AsyncWebClient,
    *,
    channel: str,
    thread_ts: str,
    old: Sequence[str],
    messages: Sequence[Message],
) -> list[tuple[int, Exception]]:
    """The findings edited in place: message i replaces the old message i (chat.update is idempotent, so
    a failed edit is tried once more); more messages are posted, old ones left over say they were
    replaced. Returns what could not be edited or posted, as `post_thread` does; an edit that failed is
    not posted anew (Slack may have taken it: a second copy would end in a second Re-check button)."""
    failures: list[tuple[int, Exception]] = []
    for index, message in enumerate(messages):
        if index >= len(old):
            failures += [
                (index, e)
                for _, e in await post_thread(
                    client, channel=channel, thread_ts=thread_ts, messages=[message]
                )
            ]
            continue
        for attempt in (1, 2):
            try:
                await update_message(
                    client,
                    channel=channel,
                    ts=old[index],
                    text=message["text"],
                    blocks=message.get("blocks"),
                    metadata=message.get("metadata"),
                )
                break
            except Exception as error:
                log.warning("findings message %s in %s not edited (%s)", old[index], channel, error)
                if attempt == 2:
                    failures.append((index, error))
    for ts in old[len(messages) :]:
        note = "This part of the earlier findings was replaced by the re-check."
        context = {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}
        try:
            await update_message(client, channel=channel, ts=ts, text=note, blocks=[context])
        except Exception as error:
            log.warning("old findings message %s in %s not cleared: %s", ts, channel, error)
    return failures
