"""The "What changed" renderers: the likely trigger as one sentence on the first screen, the timeline
short with the rest counted, a refused read one line, every word from Azure escaped."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from checks.changes.record import ACTIVITY_LOG, UNKNOWN, Change
from checks.model import Report, SourceSummary
from handlers.render.what_changed import changes_message, text_lines, trigger_blocks, what_changed_blocks
from tests.changes.conftest import WRITTEN

RID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/stsalesadls"
TRIGGER = Change(
    kind=ACTIVITY_LOG,
    summary="role assignment Storage Blob Data Reader for contoso-pv deleted",
    at=WRITTEN - timedelta(days=6, hours=14),
    resource_id=f"{RID}/providers/Microsoft.Authorization/roleAssignments/x",
    resource="stsalesadls",
    operation="Microsoft.Authorization/roleAssignments/delete",
    caller="bob@contoso.com",
    event_id="e1",
    likely_trigger=True,
    finding="source-access",
    scan="weekly",
    relation="8 h before the first failed run",
)


def _report(*changes: Change) -> Report:
    return Report(
        account="contoso-pv",
        source=SourceSummary(name="sales-adls", kind="AdlsGen2", resource_id=RID, collection=None),
        scans=[],
        findings=[],
        started_at=WRITTEN,
        elapsed_ms=1,
        docs_base="https://learn.microsoft.com/en-us/purview/troubleshoot-connections",
        changes=list(changes),
    )


def _noise(i: int, **kw: Any) -> Change:
    fields: dict[str, Any] = {
        "kind": ACTIVITY_LOG,
        "summary": f"settings written #{i}",
        "at": WRITTEN - timedelta(hours=i),
        "resource": "stsalesadls",
        "caller": "adele.vance@contoso.com",
        "event_id": f"n{i}",
    }
    return Change(**{**fields, **kw})


def test_the_first_screen_shows_the_trigger_as_one_sentence() -> None:
    [block] = trigger_blocks(_report(TRIGGER, _noise(1)))
    text = block["text"]["text"]
    assert text.startswith("*Likely trigger* of `source-access` (scan weekly)")
    assert (
        "role assignment Storage Blob Data Reader for contoso-pv deleted by bob@contoso.com at <!date^"
        in text
    )
    assert "|2026-11-21 18:00 UTC>" in text and text.endswith("— 8 h before the first failed run")
    assert "https://portal.azure.com/#@/resource" + RID + "|stsalesadls>" in text
    assert trigger_blocks(_report(_noise(1))) == []


def test_the_timeline_is_short_and_counts_the_rest() -> None:
    refused = Change(kind=UNKNOWN, status="Unknown", summary="could not read the Activity Log (HTTP 403)")
    blocks = what_changed_blocks(_report(TRIGGER, refused, *[_noise(i) for i in range(1, 9)]))
    texts = [json.dumps(b) for b in blocks]
    assert "What changed" in texts[0] and "Likely trigger" in texts[1]
    assert "8 more changes in the window" in texts[2] and "and 3 more" in texts[2]
    assert any("? unknown: could not read the Activity Log (HTTP 403)" in t for t in texts)
    assert what_changed_blocks(_report()) == []


def test_azure_words_are_escaped_and_attempts_say_so() -> None:
    evil = _noise(
        1, resource="<!channel>", caller="*boss*@contoso.com", summary="<https://x|click>", status="Failed"
    )
    [line] = [b for b in what_changed_blocks(_report(evil)) if "attempted" in json.dumps(b)]
    text = line["text"]["text"]
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "<https://x|click>" not in text and "*boss*" not in text
    assert "attempted (failed)" in text


def test_text_and_the_command_answer() -> None:
    lines = text_lines(_report(_noise(2), TRIGGER))
    assert lines[0].startswith("likely trigger of source-access: stsalesadls · role assignment")
    message = changes_message(_report(TRIGGER), days=7)
    assert message["text"].startswith("What changed on sales-adls (contoso-pv), the last 7 days:")
    assert "the last 7 days" in message["blocks"][0]["text"]["text"]
    empty = changes_message(_report())
    assert "No change recorded" in json.dumps(empty["blocks"])
