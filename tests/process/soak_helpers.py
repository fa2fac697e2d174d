"""What the soak test (`test_soak.py`) shares: signed requests with their own trigger ids, Slack's
retries and replays, a Slack that answers 5xx to about 5 % of its posts and edits, and the bot's RSS."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.slack import signing
from tests.slack.fake_slack import FakeSlack, Message
from tests.slack.signing import SlackRequest

Json = dict[str, Any]


@dataclass
class Sent:
    """One request as delivered: its HTTP status and ack body."""

    status: int
    text: str


async def deliver(
    http: aiohttp.ClientSession,
    url: str,
    secret: str,
    request: SlackRequest,
    *,
    timestamp: int | None = None,
    retry: int | None = None,
) -> Sent:
    """POST `request` signed as Slack signs it; the same `timestamp` gives the same bytes (a replay);
    `retry`: with Slack's retry headers, as Slack re-sends an event it thinks was lost."""
    headers = {"Content-Type": request.content_type}
    headers.update(signing.signed_headers(secret, request.body, timestamp))
    if retry is not None:
        headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"})
    async with http.post(url, data=request.body.encode(), headers=headers) as resp:
        return Sent(resp.status, await resp.text())


def slash(text: str, channel: str, user: str, response_url: str, trigger_id: str) -> SlackRequest:
    """`/purview-check TEXT` with its own trigger id (the dedupe keys on trigger id + response_url)."""
    request = signing.slash_command(text, channel_id=channel, user_id=user, response_url=response_url)
    body = request.body.replace("trigger_id=111.111.xxx", f"trigger_id={trigger_id}")
    assert body != request.body
    return SlackRequest(body, request.content_type)


def click(
    value: str, channel: str, message_ts: str, thread_ts: str, response_url: str, trigger_id: str, user: str
) -> SlackRequest:
    """A Re-run click with its own trigger id."""
    request = signing.block_action(value, channel, message_ts, thread_ts, response_url, user_id=user)
    body = request.body.replace("111.222.valid", trigger_id)
    assert body != request.body
    return SlackRequest(body, request.content_type)


@dataclass
class FlakySlack:
    """Makes `FakeSlack` answer HTTP 5xx to about `rate` of `chat.postMessage` and `chat.update` calls,
    half of them after taking the call (`stored=True`: the message is posted or edited, the answer lost).

    A given post (its `post_id`) or edit (channel, ts, text) fails at most once, so the bot's own retry or
    history lookup settles it: the soak measures exactly-once under failures, not a run of bad luck.
    """

    slack: FakeSlack
    rate: float = 0.05
    seed: int = 9
    failed: dict[str, int] = field(default_factory=dict)  # method → calls answered 5xx
    _seen: set[tuple[str, str]] = field(default_factory=set)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def install(self) -> None:
        for method in ("chat.postMessage", "chat.update"):
            for stored in (True, False):
                status = 503 if stored else 500
                self.slack.fail(method, status=status, stored=stored, when=self._picker(method))

    def _picker(self, method: str) -> Callable[[Json], bool]:
        def pick(args: Json) -> bool:
            key = (method, _call_key(method, args))
            if key in self._seen or self._rng.random() >= self.rate / 2:
                return False
            self._seen.add(key)
            self.failed[method] = self.failed.get(method, 0) + 1
            return True

        return pick


def _call_key(method: str, args: Json) -> str:
    if method == "chat.update":
        return f"{args.get('channel')}|{args.get('ts')}|{args.get('text')}"
    metadata = args.get("metadata")
    payload = metadata.get("event_payload") if isinstance(metadata, dict) else None
    post_id = payload.get("post_id") if isinstance(payload, dict) else None
    return str(post_id or f"{args.get('channel')}|{args.get('thread_ts')}|{args.get('text')}")


def post_id(message: Message) -> str | None:
    payload = (message.metadata or {}).get("event_payload")
    value = payload.get("post_id") if isinstance(payload, dict) else None
    return value if isinstance(value, str) else None


def is_report_parent(message: Message) -> bool:
    """A slash command's parent: top level, with the report's metadata."""
    return message.is_top_level and (message.metadata or {}).get("event_type") == "purview_report"


def has_rerun_button(message: Message) -> bool:
    for block in message.blocks:
        if isinstance(block, dict) and block.get("type") == "actions":
            for element in block.get("elements") or []:
                if isinstance(element, dict) and element.get("action_id") == "purview_rerun":
                    return True
    return False


def rerun_value(message: Message) -> str:
    for block in message.blocks:
        if isinstance(block, dict) and block.get("type") == "actions":
            for element in block.get("elements") or []:
                if isinstance(element, dict) and element.get("action_id") == "purview_rerun":
                    return str(element["value"])
    raise AssertionError(f"no Re-run button in {message.ts}")


def rss_kib(pid: int) -> int:
    """The process's resident set (VmRSS, KiB) from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def now_ts(n: int) -> str:
    """A Slack message ts for a human message (a mention), unique per `n`."""
    return f"{int(time.time())}.{n:06d}"
