"""Posting reports to Slack so that they are never lost: join public channels, fall back to response_url.

Slack API errors are logged with their method and counted by the Web API client itself
(`bot.slack_client.ObservedWebClient`); here only the errors that change what to do are handled.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

REPORT_EVENT = "purview_report"
INVITE_HINT = (
    "I can't post in this channel (it is private, or I was removed). Invite me with `/invite @purview-bot` "
    "and run the command again; meanwhile here is the report, visible only to you."
)
# response_url accepts 5 answers in 30 minutes: the fallback keeps one for the hint and the summary
MAX_FALLBACK_MESSAGES = 4

Message = dict[str, Any]  # {"text": str, "blocks": list[dict]}
Respond = Callable[..., Awaitable[Any]]


class ChannelUnreachable(Exception):
    """The bot cannot post in the channel (private and not invited, or archived)."""


def slack_error(error: SlackApiError) -> str:
    return str(error.response.get("error") or "unknown_error")


def report_metadata(source: str, account: str, scan: str | None) -> dict[str, Any]:
    """The parent message's metadata; Slack payload values cannot be null, so no scan is ""."""
    payload = {"source": source, "account": account, "scan": scan or ""}
    return {"event_type": REPORT_EVENT, "event_payload": payload}


async def post_message(
    client: AsyncWebClient,
    *,
    channel: str,
    text: str,
    blocks: Sequence[dict[str, Any]] | None = None,
    thread_ts: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> str:
    """Post and return the message's ts; `not_in_channel` → `conversations.join` and once more.

    Raises ChannelUnreachable when the bot cannot get in (a private channel it was not invited to).
    """
    kwargs: dict[str, Any] = {"channel": channel, "text": text, "unfurl_links": False, "unfurl_media": False}
    if blocks is not None:
        kwargs["blocks"] = list(blocks)
    if thread_ts is not None:
        kwargs["thread_ts"] = thread_ts
    if metadata is not None:
        kwargs["metadata"] = metadata
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


async def post_thread(
    client: AsyncWebClient, *, channel: str, thread_ts: str, messages: Sequence[Message]
) -> None:
    """The report's messages into the thread, in order (Slack orders replies by ts)."""
    for message in messages:
        await post_message(
            client, channel=channel, thread_ts=thread_ts, text=message["text"], blocks=message.get("blocks")
        )


async def respond_report(respond: Respond, summary: Message, messages: Sequence[Message]) -> None:
    """The report through the command's response_url (only the user sees it), with how to invite the bot."""
    head = {"type": "section", "text": {"type": "mrkdwn", "text": INVITE_HINT}}
    await respond(
        text=f"{INVITE_HINT}\n{summary['text']}",
        blocks=[head, *summary.get("blocks", [])][:50],
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
