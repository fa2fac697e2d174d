"""The last report per source, kept in the store: saved after every report, and a new check (slash
command, mention) starts its thread with what changed since it. Re-runs keep diffing against their
button. A store that fails never blocks a report."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.store import SqlStore, Store, open_store
from checks.model import Status
from handlers.render.changes import changes_since, finding_keys, stored_finding_keys, stored_report_time
from handlers.render.times import utc_text as when_text
from sandbox import Sandbox
from tests.render.reports import finding, report
from tests.slack import signing
from tests.slack.conftest import CHANNEL, BotFactory, BotHarness, plain
from tests.slack.fake_slack import FakeSlack

# the requester's Entra user (Slack email → Graph): failing, reader-role is unknown, a toggleable problem
GRAPH_USERS = r"/graph/v1\.0/users"
ACCOUNT = "contoso-pv"
SINCE = re.compile(
    r"Since the last check \(<!date\^\d+\^\{date_short_pretty\} \{time\}\|"
    r"((\d{4}-\d\d-\d\d )?\d\d:\d\d UTC)>\)"
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """The store the bot uses: the harness points PURVIEW_BOT_DATABASE_URL at this SQLite file."""
    opened = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'purview-bot.db'}")
    yield opened
    await opened.close()


async def saved(store: Store, source: str, *, newer_than: str | None = None) -> dict[str, Any]:
    """The source's last report once it is saved (after the thread is posted), newer than the given one."""
    deadline = time.monotonic() + 10
    while True:
        last = await store.last_report(ACCOUNT, source)
        if last is not None and last.get("startedAt") != newer_than:
            return last
        assert time.monotonic() < deadline, f"no report of {source} saved"
        await asyncio.sleep(0.05)


def problems(stored: dict[str, Any]) -> set[str]:
    return {k.split("|")[0] for k in stored_finding_keys(stored)}


async def test_second_check_starts_with_what_changed_since_the_last_check(
    bot: BotHarness, slack: FakeSlack, sample_sandbox: Sandbox, store: Store
) -> None:
    # first check: Graph fails, so reader-role is unknown; nothing to compare with yet
    sample_sandbox.add_fault({"path": GRAPH_USERS, "status": 500})
    await bot.command("sales-adls")
    first = await bot.report(CHANNEL)
    assert "since the last check" not in plain(first.thread[0].text).lower()
    stored = await saved(store, "sales-adls")
    assert stored["schema"] == "purview-bot/report@1"
    assert stored["source"]["name"] == "sales-adls" and stored["account"] == ACCOUNT
    assert {"reader-role", "source-access"} <= problems(stored)
    first_time = stored_report_time(stored)
    assert first_time is not None

    # Azure recovers: the next /purview-check says so first, dated by the first report
    sample_sandbox.clear_faults()
    asked = time.monotonic()
    await bot.command("sales-adls")
    second = await bot.report(CHANNEL, after=asked)
    assert second.thread_ts != first.thread_ts, "a new check is a new parent message"
    intro = plain(second.thread[0].text)
    assert SINCE.search(intro), intro
    assert SINCE.search(intro).group(1) in (when_text(first_time, datetime.now(UTC)), when_text(first_time))  # type: ignore[union-attr]
    assert "Fixed: Data Platform On-call can read stsalesadls (reader-role)" in intro
    assert "Still there: FAIL source-access, scan weekly" in intro
    assert "New" not in intro
    assert "source-access" in second.thread_text  # the findings follow, as always

    # the second report replaced the first in the store
    latest = await saved(store, "sales-adls", newer_than=stored["startedAt"])
    assert "reader-role" not in problems(latest)
    assert "source-access" in problems(latest)


async def test_a_problem_that_appears_is_new_since_the_last_check(
    bot: BotHarness, sample_sandbox: Sandbox, store: Store
) -> None:
    await bot.command("sales-adls")
    await bot.report(CHANNEL)
    stored = await saved(store, "sales-adls")

    sample_sandbox.add_fault({"path": GRAPH_USERS, "status": 500})
    asked = time.monotonic()
    await bot.command("sales-adls")
    again = await bot.report(CHANNEL, after=asked)
    intro = plain(again.thread[0].text)
    assert SINCE.search(intro) and "New COULD NOT CHECK" in intro and "(reader-role)" in intro, intro
    assert "Fixed:" not in intro
    await saved(store, "sales-adls", newer_than=stored["startedAt"])


async def test_a_mention_compares_with_the_last_slash_command_report(
    bot: BotHarness, sample_sandbox: Sandbox, store: Store
) -> None:
    sample_sandbox.add_fault({"path": GRAPH_USERS, "status": 500})
    await bot.command("sales-adls")
    await bot.report(CHANNEL)
    stored = await saved(store, "sales-adls")
    sample_sandbox.clear_faults()

    ts = f"{int(time.time())}.000700"
    await bot.send(signing.app_mention("check sales-adls", CHANNEL, ts))
    mentioned = await bot.report(CHANNEL, ts)
    intro = plain(mentioned.thread_text)
    assert SINCE.search(intro) and "Fixed:" in intro and "(reader-role)" in intro, intro
    latest = await saved(store, "sales-adls", newer_than=stored["startedAt"])
    assert "reader-role" not in problems(latest)


async def test_rerun_diffs_against_its_button_and_is_saved_too(
    bot: BotHarness, sample_sandbox: Sandbox, store: Store
) -> None:
    await bot.command("sales-adls")
    first = await bot.report(CHANNEL)
    stored = await saved(store, "sales-adls")

    sample_sandbox.add_fault({"path": GRAPH_USERS, "status": 500})
    clicked = time.monotonic()
    await bot.click(first.rerun_value, CHANNEL, first.last.response["ts"], first.thread_ts)
    rerun = await bot.report(CHANNEL, first.thread_ts, after=clicked)
    intro = plain(rerun.thread[0].text)
    assert "Re-checked by <@" in intro and "New COULD NOT CHECK" in intro and "(reader-role)" in intro
    assert not SINCE.search(intro), "a Re-run compares with its button, not the store"
    latest = await saved(store, "sales-adls", newer_than=stored["startedAt"])
    assert "reader-role" in problems(latest)


async def test_a_failing_store_never_blocks_the_report(
    bot: BotHarness, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk I/O error")

    monkeypatch.setattr(SqlStore, "last_report", broken)
    monkeypatch.setattr(SqlStore, "save_report", broken)
    await bot.command("sales-adls")
    first = await bot.report(CHANNEL)
    assert "source-access" in first.thread_text
    assert "since the last check" not in plain(first.thread[0].text).lower()
    await slack.settle()
    messages = [r.getMessage() for r in caplog.records]
    assert any("could not read the last report of sales-adls" in m for m in messages)
    assert any("could not save the report of sales-adls" in m for m in messages)


async def test_serve_without_a_usable_database_still_reports(
    start_bot: BotFactory, tmp_path: Path, slack: FakeSlack
) -> None:
    # the watcher and the webhook are off (the harness's default), so the store is not required
    url = f"sqlite+aiosqlite:///{tmp_path / 'no-such-dir' / 'x.db'}"
    async with start_bot(env={"PURVIEW_BOT_DATABASE_URL": url}) as bot:
        await bot.command("sales-adls")
        report = await bot.report(CHANNEL)
        assert "source-access" in report.thread_text
        ack = await bot.command("watches")
        assert "could not open" in await bot.ephemeral(ack, "database")


# --- the helper that reads a stored report (handlers/changes.py) -------------------------------------


def test_stored_finding_keys_are_finding_keys_of_the_report() -> None:
    built = report(
        [
            finding("source-access", Status.FAIL),
            finding("source-access", Status.FAIL),  # a duplicate counts once
            finding("key-vault-access", Status.WARN, scan=None),
            finding("reader-role", Status.PASS),
            finding("azure-policy", Status.UNKNOWN, scan="a|b"),
            finding("integration-runtime", Status.SKIPPED),
        ]
    )
    assert stored_finding_keys(built.to_json()) == finding_keys(built)


@pytest.mark.parametrize(
    "findings",
    [
        None,
        "x",
        [1, None, "x"],
        [{"check": "", "status": "fail"}],
        [{"check": "a|b", "status": "fail"}],
        [{"check": "source-access", "status": "broken"}],
        [{"check": "source-access", "status": "pass"}],
        [{"check": "source-access"}],
        [{"check": 3, "status": "fail"}],
    ],
)
def test_stored_finding_keys_skip_what_they_cannot_read(findings: object) -> None:
    assert stored_finding_keys({"findings": findings}) == []


def test_changes_since_compares_only_the_scans_both_reports_looked_at() -> None:
    from checks.model import ScanSummary

    weekly = ScanSummary(
        name="weekly", kind="AdlsGen2Msi", integration_runtime=None, credential=None, last_run=None
    )
    nightly = ScanSummary(
        name="nightly", kind="AdlsGen2Msi", integration_runtime=None, credential=None, last_run=None
    )
    previous = report(
        [finding("source-access", scan="weekly"), finding("key-vault-access", scan="nightly")],
        scans=[weekly, nightly],
    ).to_json()
    # narrowed to weekly (`--scan weekly`): nightly's problem is neither fixed nor new
    narrowed = report([finding("reader-role", scan="weekly")], scans=[weekly])
    changes = changes_since(previous, narrowed)
    assert changes.fixed == ["source-access (weekly)"]
    assert changes.new == ["reader-role (weekly)"]
    assert changes.since == datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    # and a source-wide problem counts whatever the scans
    wide = report([finding("key-vault-access", scan=None)], scans=[])
    assert changes_since(previous, wide).new == ["key-vault-access"]


def test_stored_report_time() -> None:
    assert stored_report_time({"startedAt": "2026-11-28T08:14:00Z"}) == datetime(
        2026, 11, 28, 8, 14, tzinfo=UTC
    )
    assert stored_report_time({"startedAt": "2026-11-28T08:14:00"}) == datetime(
        2026, 11, 28, 8, 14, tzinfo=UTC
    )
    assert stored_report_time({"startedAt": "yesterday"}) is None
    assert stored_report_time({}) is None
    assert when_text(
        datetime(2026, 11, 28, 8, 14, tzinfo=UTC), datetime(2026, 11, 28, 23, 0, tzinfo=UTC)
    ) == ("08:14 UTC")
    assert when_text(datetime(2026, 11, 27, 8, 14, tzinfo=UTC), datetime(2026, 11, 28, 1, 0, tzinfo=UTC)) == (
        "2026-11-27 08:14 UTC"
    )
