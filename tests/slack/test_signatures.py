"""Only Slack can talk to the bot: a wrong, missing or stale signature is a 401 and nothing happens."""

from __future__ import annotations

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


@pytest.mark.parametrize("kind", sorted(REQUESTS))
@pytest.mark.parametrize("forgery", ["bad", "missing", "stale", "future"])
async def test_unsigned_requests_are_401_and_reach_nothing(
    bot: BotHarness, slack: FakeSlack, kind: str, forgery: str
) -> None:
    request = REQUESTS[kind]
    before_slack, before_azure = len(slack.calls), len(bot.sandbox.requests)  # start-up's auth.test, probe
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
    before = len(slack.calls)
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
