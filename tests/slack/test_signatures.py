"""Only Slack can talk to the bot: a wrong, missing or stale signature is a 401 and nothing happens.

The signature is checked on the raw body before anything parses it, so whatever an unsigned request
carries (bad JSON, deep nesting, bytes that are not UTF-8, a timestamp that is not a number, a megabyte)
is a 401 (or a 413 past the size cap) with one log line and no traceback, and never reaches Bolt's
parsing or logs. A body Slack signed but Bolt cannot read is a 400.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

import pytest

from tests.slack import signing
from tests.slack.conftest import BotHarness
from tests.slack.fake_slack import FakeSlack

REQUESTS = {
    "command": signing.slash_command("sales-adls"),
    "mention": signing.app_mention("check sales-adls", "C111", "1700000000.000100"),
    "button": signing.block_action(
        '{"v":1,"s":"sales-adls","a":"contoso-pv","c":null,"p":[]}',
        "C111",
        "1.2",
        "1.1",
        "http://127.0.0.1:9/x",
    ),
}
MARKER = "FORGED-LOG-LINE"  # in every hostile body: no log record may show it
CAP = 512 * 1024  # bot.server.SLACK_MAX_BODY_BYTES


async def started(bot: BotHarness, slack: FakeSlack) -> tuple[int, int]:
    """Calls to Slack and Azure so far, once start-up's auth.test (in the background) has been made."""
    await slack.wait_for("auth.test")
    return len(slack.calls), len(bot.sandbox.requests)


def sign(secret: str, body: bytes, timestamp: str | None = None) -> dict[str, str]:
    """Slack's scheme over raw bytes (tests/slack/signing signs text)."""
    ts = timestamp or str(int(time.time()))
    digest = hmac.new(secret.encode(), b"v0:%s:%s" % (ts.encode(), body), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


async def post(bot: BotHarness, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with bot.session.post(bot.events_url, data=body, headers=headers) as resp:
        return resp.status, await resp.text()


def refused(bot_metrics: str, reason: str) -> float:
    for line in bot_metrics.splitlines():
        if line.startswith(f'purview_bot_http_refused_total{{reason="{reason}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def metrics(bot: BotHarness) -> str:
    async with bot.session.get(f"{bot.url}/metrics") as resp:
        return await resp.text()


@pytest.mark.parametrize("kind", sorted(REQUESTS))
@pytest.mark.parametrize("forgery", ["bad", "missing", "stale", "future"])
async def test_unsigned_requests_are_401_and_reach_nothing(
    bot: BotHarness, slack: FakeSlack, kind: str, forgery: str
) -> None:
    request = REQUESTS[kind]
    before_slack, before_azure = await started(bot, slack)
    now = int(time.time())
    ack = await bot.send(
        request,
        bad_signature=forgery == "bad",
        omit_signature=forgery == "missing",
        timestamp={"stale": now - 6 * 60, "future": now + 6 * 60}.get(forgery),
    )
    assert ack.status == 401
    assert "sales-adls" not in ack.text
    await slack.settle(quiet=0.3)
    assert slack.calls[before_slack:] == []
    assert bot.sandbox.requests[before_azure:] == []


async def test_a_tampered_body_with_a_valid_signature_of_another_body_is_401(
    bot: BotHarness, slack: FakeSlack
) -> None:
    before, _ = await started(bot, slack)
    good = signing.slash_command("healthy-blob")
    headers = {**signing.signed_headers(bot.secret, good.body), "Content-Type": signing.FORM}
    tampered = good.body.replace("healthy-blob", "sales-adls")
    async with bot.session.post(bot.events_url, data=tampered, headers=headers) as resp:
        assert resp.status == 401
    await slack.settle(quiet=0.3)
    assert slack.calls[before:] == []


async def test_a_correctly_signed_request_is_accepted(bot: BotHarness) -> None:
    """The control: the same helper, signed right, gets through (so the 401s above mean something)."""
    ack = await bot.send(REQUESTS["command"])
    assert ack.status == 200
    await bot.report("C111")  # and let it finish before the server closes


HOSTILE_BODIES = {
    "bad JSON": (b'{"type": "event_callback", "event": ' + MARKER.encode(), signing.JSON),
    "deep nesting": (b"[" * 200_000 + MARKER.encode(), signing.JSON),
    "deep payload": (b"payload=" + b"%5B" * 50_000 + MARKER.encode(), signing.FORM),
    "not UTF-8": (b"\xff\xfe\xfa command=%2Fpurview-check&text=" + MARKER.encode(), signing.FORM),
    "a forged log line": (f"text=x\nERROR bot: {MARKER}\r\n".encode(), signing.FORM),
    "400 KB": (b"text=" + MARKER.encode() * 25_000, signing.FORM),
}


async def test_hostile_unsigned_bodies_are_401_in_one_log_line_without_body_or_traceback(
    bot: BotHarness, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    before, _ = await started(bot, slack)
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    forged_ts = "abc"
    for name, (body, content_type) in HOSTILE_BODIES.items():
        for headers in (
            {},  # no signature at all
            sign("not-the-secret", body),
            sign(bot.secret, body, timestamp=forged_ts),  # the right key, a timestamp that is no number
            {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=\u00e9\u00e9"},
        ):
            status, text = await post(bot, body, {**headers, "Content-Type": content_type})
            assert status == 401, (name, headers, text)
    await slack.settle(quiet=0.3)
    assert slack.calls[before:] == []
    records = caplog.records
    assert not [r for r in records if r.exc_info or r.levelno >= logging.ERROR], caplog.text
    assert MARKER not in caplog.text
    refusals = [r for r in records if "/slack/events" in r.getMessage()]
    assert len(refusals) == 1, "one line per minute for the same kind of refusal"
    assert "\n" not in refusals[0].getMessage()
    assert len(caplog.text) < 5_000
    assert refused(await metrics(bot), "bad_signature") == 4 * len(HOSTILE_BODIES)


async def test_bodies_over_the_cap_are_413_and_leave_the_log_small(
    bot: BotHarness, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    """Five 1 MB posts used to write 5 MB of log (Bolt logged every rejected body at INFO)."""
    await started(bot, slack)
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    body = b"text=" + MARKER.encode() * 66_000  # 990 KB: under aiohttp's own 1 MiB cap
    for _ in range(5):  # unsigned: the size is refused before the signature is even computed
        status, _text = await post(bot, body, {"Content-Type": signing.FORM})
        assert status == 413
    assert MARKER not in caplog.text
    assert len(caplog.text) < 2_000
    assert refused(await metrics(bot), "too_large") == 5
    ack = await bot.command("sales-adls")  # and the bot is none the worse
    assert ack.status == 200
    await bot.report("C111")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"type": "event_callback", "event": {', signing.JSON),
        (b"[" * 200_000, signing.JSON),
        (b'["a list, not an object"]', signing.JSON),
        (b"payload=%7Bnot+json", signing.FORM),
        (b"\xff\xfe command=%2Fpurview-check", signing.FORM),
    ],
    ids=["bad JSON", "deep nesting", "a list", "bad payload", "not UTF-8"],
)
async def test_a_signed_body_bolt_cannot_read_is_400_without_a_traceback(
    bot: BotHarness, slack: FakeSlack, caplog: pytest.LogCaptureFixture, body: bytes, content_type: str
) -> None:
    before, _ = await started(bot, slack)
    caplog.set_level(logging.DEBUG)
    status, _text = await post(bot, body, {**sign(bot.secret, body), "Content-Type": content_type})
    assert status == 400
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], caplog.text
    await slack.settle(quiet=0.3)
    assert slack.calls[before:] == []
