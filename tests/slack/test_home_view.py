"""The Home tab's view, pure: within Slack's limits however many sources, names escaped, words beside
icons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slack_sdk.models.views import View

from handlers.ports import Mute, ScanCursor, StoredReport
from handlers.slack.home import AccountState, SourceState, gather_sources, home_view, source_line
from tests.watch.conftest import assert_block_kit

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def test_three_hundred_sources_stay_within_a_home_tabs_hundred_blocks() -> None:
    cursors = [
        ScanCursor("contoso-pv", f"src-{i:03d}", "weekly", last_status="Succeeded") for i in range(300)
    ]
    view = home_view([AccountState("contoso-pv", gather_sources(cursors, [], []))], NOW)
    assert len(view["blocks"]) <= 100
    assert_block_kit(view["blocks"], limit=100)
    View(**view).validate_json()
    assert "more sources: `/purview-check list` names them all" in str(view["blocks"][-1])


def test_a_source_line_escapes_names_and_says_words() -> None:
    failing = ScanCursor(
        "contoso-pv", "<!channel>*x*", "w_1", last_status="Failed", failing_since=NOW - timedelta(days=2)
    )
    report = StoredReport("contoso-pv", "<!channel>*x*", {"status": "unknown"}, NOW)
    mute = Mute("contoso-pv", "<!channel>*X*", NOW + timedelta(hours=1))
    [state] = gather_sources([failing], [report], [mute])
    line = source_line(state, NOW)
    assert "<!channel>" not in line and "&lt;!channel&gt;" in line
    assert "🔴 FAILING since <!date^" in line and "COULD NOT CHECK" in line and "🔕 muted until" in line
    assert "🔕" not in source_line(state, NOW + timedelta(hours=2))  # an expired mute is no mute
    empty = home_view([AccountState("contoso-pv", [])], NOW)
    assert "No source seen yet" in str(empty)


def test_the_closing_note_has_room_within_the_hundred_blocks() -> None:
    """An account of 93 sources fills the tab up to the last blocks: the accounts after it (one the store
    could not read, one of a single source) are counted in the closing note, and the view still has at
    most 100 blocks (else views.publish is never called)."""
    accounts = [
        AccountState("acct-a", [SourceState(f"s{i}") for i in range(93)]),
        AccountState("acct-b", [], "The bot's database did not answer: try again in a minute."),
        AccountState("acct-c", [SourceState("x")]),
    ]
    view = home_view(accounts, NOW)
    assert len(view["blocks"]) <= 100
    assert_block_kit(view["blocks"], limit=100)
    View(**view).validate_json()
    note = str(view["blocks"][-1])
    assert "1 more sources" in note and "2 more accounts not shown" in note, note
    assert "`/purview-check list` names them all" in note
    shown = str(view["blocks"])
    assert "s92" in shown and "acct-b" not in shown


def test_sources_cut_at_the_limit_are_counted_in_a_note_within_the_limit() -> None:
    for count in range(94, 99):
        view = home_view(
            [
                AccountState("acct-d", [SourceState(f"s{i}") for i in range(count)]),
                AccountState("acct-e", [SourceState("y")]),
            ],
            NOW,
        )
        assert len(view["blocks"]) <= 100, count
        assert_block_kit(view["blocks"], limit=100)
        sections = [b for b in view["blocks"] if b.get("accessory")]
        left = count + 1 - len(sections)  # every source is on the tab or counted in the note
        assert left > 0 and f"…and {left} more sources" in str(view["blocks"][-1]), count
