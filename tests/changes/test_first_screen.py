"""What changed on the first screens: the verdict and the automatic post show the likely trigger of the
finding they lead with (and no other), the thread carries the whole "What changed" part."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from checks.model import Finding, Status
from handlers.render.findings import thread_messages
from handlers.render.summary import summary_blocks
from handlers.render.watch_posts import TRIGGER, failure_parent
from handlers.watch.model import Failure
from tests.changes.conftest import WRITTEN
from tests.changes.test_render import TRIGGER as SOURCE_ACCESS_TRIGGER
from tests.changes.test_render import _noise, _report

CAUSE = Finding(
    check="source-access",
    status=Status.FAIL,
    section="permission-the-credential-on-the-data-source",
    title="contoso-pv cannot read blobs in stsalesadls: it has Reader but no data role",
    scan="weekly",
)
ROTATION = Finding(
    check="credential-rotation",
    status=Status.WARN,
    section="scans-no-longer-run",
    title="Secret sales-key rotated after the last successful run",
    scan="weekly",
)
OTHER_TRIGGER = replace(
    SOURCE_ACCESS_TRIGGER,
    finding="credential-rotation",
    summary="new version of secret sales-key",
    event_id="e2",
)


def _texts(blocks: list[dict[str, Any]]) -> str:
    return "\n".join(str(b["text"].get("text", "")) for b in blocks if isinstance(b.get("text"), dict))


def test_the_verdict_shows_the_trigger_of_its_cause_only() -> None:
    report = replace(_report(SOURCE_ACCESS_TRIGGER, OTHER_TRIGGER, _noise(1)), findings=[CAUSE, ROTATION])
    first = _texts(summary_blocks(report))
    assert "*Likely trigger* of `source-access` (scan weekly)" in first
    assert "deleted by bob@contoso.com" in first
    assert "Likely trigger* of `credential-rotation`" not in first and "settings written" not in first
    thread = "\n".join(_texts(m["blocks"]) for m in thread_messages(report, rerun_value="{}"))
    assert "*What changed* since the last good scan" in thread
    assert "*Likely trigger* of `credential-rotation`" in thread and "settings written #1" in thread


def test_no_trigger_no_line() -> None:
    report = replace(_report(_noise(1)), findings=[CAUSE])
    assert "Likely trigger" not in _texts(summary_blocks(report))


def test_the_automatic_post_leads_with_the_trigger_and_keeps_it_apart() -> None:
    report = replace(_report(SOURCE_ACCESS_TRIGGER, OTHER_TRIGGER), findings=[CAUSE, ROTATION])
    run = {"id": "r1", "status": "Failed", "endTime": (WRITTEN - timedelta(hours=1)).isoformat()}
    failure = Failure("contoso-pv", "sales-adls", "sales", "weekly", run, ("r1",), report=report)
    parent = failure_parent(failure, CAUSE, WRITTEN)
    [block] = [b for b in parent["blocks"] if b.get("block_id") == TRIGGER]
    text = block["text"]["text"]
    assert text.startswith("*Likely trigger* of `source-access`") and "credential-rotation" not in text
    without = failure_parent(replace(failure, report=replace(report, changes=[])), CAUSE, WRITTEN)
    assert not [b for b in without["blocks"] if b.get("block_id") == TRIGGER]
