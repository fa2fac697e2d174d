"""Fixtures: the sandbox on the sample tenant, the fake Slack Web API, and the bot serving HTTP between them.

The bot runs in-process (`bot.server.serve_http`) with its settings read from the environment, as in
production: `sb.env()` for Azure and `SLACK_*` pointing at the fake Slack. Tests talk to it only through
signed HTTP requests, exactly as Slack does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from checks.gateways import factory
from checks.gateways.pipeline import RetrySettings
from sandbox import Sandbox, World, load_world
from tests.slack import signing
from tests.slack.fake_slack import Call, FakeSlack, iter_strings
from tests.slack.signing import SlackRequest

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
CHANNEL = "C111"
FAST_AZURE_RETRY = RetrySettings(total=4, backoff_factor=0.01, backoff_max=0.05)


def plain(text: str) -> str:
    """Text without mrkdwn emphasis and code marks, for assertions on wording (`*x*`, `` `x` ``)."""
    return text.replace("`", "").replace("*", "")


@dataclass
class Ack:
    """The bot's HTTP answer to one Slack request, and when it arrived."""

    status: int
    text: str
    elapsed: float
    received_at: float
    """`time.monotonic()` when the response was complete (comparable with `Call.at`)."""
    response_url: str | None = None
    response_id: str | None = None

    @property
    def json(self) -> Any:
        return json.loads(self.text) if self.text.strip().startswith("{") else None


@dataclass
class BotHarness:
    """The running bot, the fake Slack and the sandbox behind it, and a client that signs like Slack."""

    url: str
    slack: FakeSlack
    sandbox: Sandbox
    session: aiohttp.ClientSession
    secret: str = SIGNING_SECRET
    acks: list[Ack] = field(default_factory=list)
    _responses: int = 0

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"

    async def send(
        self,
        request: SlackRequest,
        *,
        timestamp: int | None = None,
        bad_signature: bool = False,
        omit_signature: bool = False,
    ) -> Ack:
        started = time.monotonic()
        status, text, _ = await signing.post_signed(
            self.session,
            self.events_url,
            request,
            secret=self.secret,
            timestamp=timestamp,
            bad_signature=bad_signature,
            omit_signature=omit_signature,
        )
        done = time.monotonic()
        ack = Ack(status, text, done - started, done)
        self.acks.append(ack)
        return ack

    def new_response_url(self, prefix: str = "r") -> str:
        self._responses += 1
        return self.slack.response_url(f"{prefix}{self._responses}")

    async def command(self, text: str, *, channel_id: str = CHANNEL, response_url: str | None = None) -> Ack:
        """`/purview-check TEXT` typed in `channel_id`."""
        url = response_url or self.new_response_url("cmd")
        ack = await self.send(signing.slash_command(text, channel_id=channel_id, response_url=url))
        ack.response_url, ack.response_id = url, url.rsplit("/", 1)[-1]
        return ack

    async def click(
        self,
        value: str,
        channel: str,
        message_ts: str,
        thread_ts: str | None,
        *,
        action_id: str = "purview_rerun",
    ) -> Ack:
        """A click on the Re-run button (or `action_id`) of the message `message_ts` (in `thread_ts`)."""
        url = self.new_response_url("act")
        ack = await self.send(
            signing.block_action(value, channel, message_ts, thread_ts, url, action_id=action_id)
        )
        ack.response_url, ack.response_id = url, url.rsplit("/", 1)[-1]
        return ack

    async def report(self, channel: str, thread_ts: str | None = None, *, after: float = 0.0) -> SlackReport:
        """Wait for a report to complete in `channel`: the thread message carrying the Re-run button.

        `thread_ts` None: a slash-command report, whose parent is the first top-level message posted
        after `after`; otherwise the report is expected inside that thread.
        """
        slack = self.slack
        if thread_ts is None:
            parent = await slack.wait_for(
                "chat.postMessage",
                lambda c: (
                    c.ok
                    and c.args.get("channel") == channel
                    and not c.args.get("thread_ts")
                    and c.at >= after
                ),
            )
            thread_ts = str(parent.response["ts"])
        else:
            parent = None
        last = await slack.wait_for(
            "chat.postMessage",
            lambda c: c.ok and c.args.get("thread_ts") == thread_ts and c.has_rerun_button and c.at >= after,
        )
        thread = [c for c in slack.thread(channel, thread_ts) if c.at >= after]
        return SlackReport(parent=parent, thread_ts=thread_ts, thread=thread, last=last)

    async def healthz(self) -> int:
        async with self.session.get(f"{self.url}/healthz") as resp:
            return int(resp.status)

    def ephemeral_text(self, ack: Ack) -> str:
        """Everything only the user sees in answer to `ack`'s request: the ack body, what came to its
        response_url, and chat.postEphemeral calls since the request."""
        parts = [ack.text] if ack.json is None else list(iter_strings(ack.json))
        parts += [c.text for c in self.slack.calls_to("response_url") if c.response_id == ack.response_id]
        parts += [
            c.text for c in self.slack.calls_to("chat.postEphemeral") if c.at >= ack.received_at - ack.elapsed
        ]
        return "\n".join(parts)

    async def ephemeral(self, ack: Ack, expect: str, within: float = 10.0) -> str:
        """Wait until the user's ephemeral answer mentions `expect` (case-insensitive); return all of it."""
        deadline = time.monotonic() + within
        while True:
            text = self.ephemeral_text(ack)
            if expect.lower() in plain(text).lower():
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"no ephemeral answer mentioning {expect!r}; the user saw: {text!r}")
            await asyncio.sleep(0.05)


@dataclass
class SlackReport:
    """One report as the fake Slack received it."""

    parent: Call | None
    thread_ts: str
    thread: list[Call]
    """Every successful chat.postMessage in the thread (after the report started), in order."""
    last: Call
    """The message with the Re-run button."""

    @property
    def thread_text(self) -> str:
        return "\n".join(c.text for c in self.thread)

    @property
    def rerun_value(self) -> str:
        button = self.last.button("purview_rerun")
        assert button is not None
        return str(button["value"])


BotFactory = Callable[..., contextlib.AbstractAsyncContextManager[BotHarness]]


def bot_environment(sandbox: Sandbox, slack: FakeSlack, tmp: Path, **extra: str) -> dict[str, str]:
    """What `purview-bot serve` would read from its environment for this sandbox and fake Slack."""
    return {
        **sandbox.env(),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.url,
        "PURVIEW_BOT_ALLOWED_CHANNELS": "",
        "PURVIEW_BOT_WATCH_INTERVAL": "0",
        "PURVIEW_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'purview-bot.db'}",
        **extra,
    }


@pytest.fixture
async def sample_sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(load_world(None)) as sb:
        yield sb


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def start_bot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, slack: FakeSlack) -> BotFactory:
    """`async with start_bot(world=…, env={…}) as bot:` the bot over its own sandbox (default: sample)."""

    @contextlib.asynccontextmanager
    async def start(
        *, world: World | None = None, env: dict[str, str] | None = None, sandbox: Sandbox | None = None
    ) -> AsyncIterator[BotHarness]:
        from bot.server import serve_http
        from bot.settings import Settings

        async with contextlib.AsyncExitStack() as stack:
            if sandbox is None:
                sandbox = await stack.enter_async_context(Sandbox(world or load_world(None)))
            monkeypatch.chdir(tmp_path)  # no stray .env, the SQLite file in the test's directory
            for name in ("SLACK_APP_TOKEN", "PURVIEW_BOT_ALERT_CHANNEL", "PURVIEW_BOT_ROUTES"):
                monkeypatch.delenv(name, raising=False)
            for name, value in bot_environment(sandbox, slack, tmp_path, **(env or {})).items():
                monkeypatch.setenv(name, value)
            # same retry count, no multi-second backoff: a persistent Azure 500 costs ms, not ~11 s
            monkeypatch.setattr(factory, "RetrySettings", lambda: FAST_AZURE_RETRY)
            url = await stack.enter_async_context(serve_http(Settings()))
            session = await stack.enter_async_context(aiohttp.ClientSession())
            yield BotHarness(url.rstrip("/"), slack, sandbox, session)

    return start


@pytest.fixture
async def bot(start_bot: BotFactory, sample_sandbox: Sandbox) -> AsyncIterator[BotHarness]:
    """The bot on the sample tenant, answering in every channel."""
    async with start_bot(sandbox=sample_sandbox) as harness:
        yield harness
