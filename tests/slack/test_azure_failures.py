"""Azure failing on one call: that finding is `unknown` (saying why), and the report still posts."""

from __future__ import annotations

from sandbox import Sandbox
from tests.slack.conftest import CHANNEL, BotHarness
from tests.slack.fake_slack import FakeSlack


async def test_key_vault_500_makes_the_secret_finding_unknown_and_the_report_posts(
    bot: BotHarness, slack: FakeSlack, sample_sandbox: Sandbox
) -> None:
    sample_sandbox.add_fault({"path": r"/kv/.*/versions", "status": 500})
    await bot.command("archive-blob")
    report = await bot.report(CHANNEL)
    assert any(r.faulted for r in sample_sandbox.requests), "the fault was never hit"
    summary = await slack.wait_for("chat.update", lambda c: c.args.get("ts") == report.thread_ts)
    # the scan's failure leads; what the bot could not read is said apart, not counted as a problem
    assert "FAIL archive-blob" in summary.text and "checks could not run:" in summary.text, summary.text
    text = report.thread_text
    assert "key-vault-secret" in text and "500" in text
    assert "key-vault-access" in text  # the rest of the report is there
