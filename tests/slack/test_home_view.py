"""The Home tab's view, pure: within Slack's limits however many sources, names escaped, words beside
icons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slack_sdk.models.views import View

from handlers.ports import Mute, ScanCursor, StoredReport
from handlers.slack.home import AccountState, gather_sources, home_view, source_line
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
