"""Requests signed exactly as Slack signs them, with payloads shaped like Slack's own examples.

Signature: `X-Slack-Signature: v0=hex(HMAC-SHA256(signing_secret, "v0:{timestamp}:{raw body}"))` with the
timestamp in `X-Slack-Request-Timestamp`; Bolt rejects a wrong, missing or > 5 minute old signature.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

TEAM_ID = "T111"
USER_ID = "W111"
_event_ids = itertools.count(1)


@dataclass(frozen=True)
class SlackRequest:
    """A body as Slack would send it, and its content type."""

    body: str
    content_type: str


def signature(secret: str, timestamp: str, body: str) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature(secret, ts, body)}


def slash_command(
    text: str,
    *,
    channel_id: str = "C111",
    user_id: str = USER_ID,
    response_url: str = "https://hooks.slack.com/commands/T111/111/xxxxx",
    command: str = "/purview-check",
    channel_name: str = "data-platform",
) -> SlackRequest:
    """A slash command body, form-encoded with the fields of Slack's example request."""
    fields = {
        "token": "verification_token",
        "team_id": TEAM_ID,
        "team_domain": "contoso",
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": "oncall",
        "command": command,
        "text": text,
        "api_app_id": "A111",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": "111.111.xxx",
    }
    return SlackRequest(urlencode(fields), FORM)


def event_callback(event: dict[str, Any]) -> SlackRequest:
    """An Events API envelope around one event, as in Slack's app_mention example."""
    envelope = {
        "token": "verification_token",
        "team_id": TEAM_ID,
        "api_app_id": "A111",
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev{next(_event_ids):06d}",
        "event_time": int(time.time()),
        "authorizations": [
            {"team_id": TEAM_ID, "user_id": "U0PURVIEWBOT", "is_bot": True, "is_enterprise_install": False}
        ],
    }
    return SlackRequest(json.dumps(envelope), JSON)


def app_mention(
    text: str,
    channel: str,
    ts: str,
    thread_ts: str | None = None,
    *,
    user: str = USER_ID,
    bot_user_id: str = "U0PURVIEWBOT",
) -> SlackRequest:
    """`@purview-bot TEXT` in a channel (or in a thread when `thread_ts` is given)."""
    event: dict[str, Any] = {
        "client_msg_id": "9cbd4c5b-7ddf-4ede-b479-ad21fca66d63",
        "type": "app_mention",
        "text": f"<@{bot_user_id}> {text}",
        "user": user,
        "ts": ts,
        "team": TEAM_ID,
        "channel": channel,
        "event_ts": ts,
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event_callback(event)


def dm(
    text: str, *, channel: str = "D0DMCHANNEL", ts: str = "1700000000.000100", user: str = USER_ID
) -> SlackRequest:
    """A direct message to the bot: a `message` event with `channel_type: im`."""
    event = {
        "client_msg_id": "0c0d8f1e-5a7c-4a44-9a6b-1d2e3f4a5b6c",
        "type": "message",
        "text": text,
        "user": user,
        "ts": ts,
        "team": TEAM_ID,
        "channel": channel,
        "event_ts": ts,
        "channel_type": "im",
    }
    return event_callback(event)


def block_action(
    value: str,
    channel: str,
    message_ts: str,
    thread_ts: str | None,
    response_url: str,
    *,
    action_id: str = "purview_rerun",
    user_id: str = USER_ID,
) -> SlackRequest:
    """A button click (`block_actions`), form field `payload=` JSON, shaped like Slack's example."""
    message: dict[str, Any] = {"type": "message", "ts": message_ts, "user": "U0PURVIEWBOT", "text": ""}
    if thread_ts is not None:
        message["thread_ts"] = thread_ts
    payload = {
        "type": "block_actions",
        "user": {"id": user_id, "username": "oncall", "name": "oncall", "team_id": TEAM_ID},
        "api_app_id": "A111",
        "token": "verification_token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
            **({"thread_ts": thread_ts} if thread_ts else {}),
        },
        "trigger_id": "111.222.valid",
        "team": {"id": TEAM_ID, "domain": "contoso"},
        "channel": {"id": channel, "name": "data-platform"},
        "message": message,
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": "purview_actions",
                "text": {"type": "plain_text", "text": "Re-run", "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return SlackRequest(urlencode({"payload": json.dumps(payload)}), FORM)


async def post_signed(
    session: aiohttp.ClientSession,
    url: str,
    body: str | SlackRequest,
    content_type: str | None = None,
    secret: str = "",
    timestamp: int | None = None,
    bad_signature: bool = False,
    omit_signature: bool = False,
) -> tuple[int, str, dict[str, str]]:
    """POST a body signed like Slack (or deliberately not): the status, body text and headers received."""
    if isinstance(body, SlackRequest):
        content_type = content_type or body.content_type
        body = body.body
    headers = {"Content-Type": content_type or FORM}
    if not omit_signature:
        headers.update(signed_headers(secret + "-wrong" if bad_signature else secret, body, timestamp))
    async with session.post(url, data=body.encode(), headers=headers) as resp:
        return resp.status, await resp.text(), dict(resp.headers)
