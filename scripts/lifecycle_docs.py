"""The automatic-post lifecycle of one failing scan, rendered as Block Kit for reviewers:
docs/blocks/lifecycle-{new,repeat,recovered}.json (`scripts/render-lifecycle-docs`).

The sample tenant's sales-adls (scan weekly) is diagnosed against the local sandbox at the world's own
times; its newest failed run opens the thread, a second failure repeats it, a success closes it. Each
file holds the parent as the watcher posts or edits it (text, blocks, metadata) and the thread replies
of that step; times and the report's duration are fixed so the output is the same on every run. Paste a
`blocks` list into https://app.slack.com/block-kit-builder to see it.

`render(out_dir)` is importable (e.g. by scripts/render-docs); run as a script it writes docs/blocks/.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "contoso-pv"
SOURCE, SCAN = "sales-adls", "weekly"
NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)  # the sample world's `now`
REPEAT_END = "2026-11-28T02:04:40.0000000Z"
RECOVERED_END = "2026-11-28T07:40:12.0000000Z"
ACKNOWLEDGED_BY = "U0DANA"
ROUTE_MENTION = "S0ONCALL"


def _as_held(message: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    """A message as Slack holds it (what the watcher reads back before an edit)."""
    return {"text": message["text"], "blocks": message["blocks"], "metadata": metadata}


async def _report(world: Any) -> Any:
    from bot.azure import azure_clients
    from bot.service import AzureDiagnosisService
    from bot.settings import Settings
    from sandbox import Sandbox

    async with Sandbox(world) as sb:
        saved = dict(os.environ)
        os.environ.update(sb.env())
        try:
            settings = Settings()
            async with azure_clients(settings) as clients:
                service = AzureDiagnosisService(clients, settings)
                report = await service.diagnose(SOURCE, account=ACCOUNT, scan=SCAN)
        finally:
            os.environ.clear()
            os.environ.update(saved)
    return replace(report, started_at=NOW, elapsed_ms=400)


def render(out_dir: Path) -> list[Path]:
    """Write the three lifecycle files into `out_dir`; returns their paths."""
    from handlers.render.watch_posts import (
        ack_edit,
        failure_metadata,
        failure_parent,
        group_thread,
        recovered_edit,
        recovered_message,
        repeat_edit,
        repeat_message,
    )
    from handlers.watch.model import Failure
    from handlers.watch.pipeline import Pipeline
    from sandbox import load_world

    world = load_world(None, rebase_to=None)
    run = world.purview[ACCOUNT].runs[f"{SOURCE}/{SCAN}"][0]
    report = asyncio.run(_report(world))
    first = Failure(ACCOUNT, SOURCE, "sales", SCAN, run, (str(run["id"]),), report=report)
    cause = Pipeline.cause(first).finding

    parent = failure_parent(first, cause, NOW, mention=ROUTE_MENTION)
    metadata = failure_metadata(ACCOUNT, first.run_ids, [first])
    new = {"parent": {**parent, "metadata": metadata}, "thread": group_thread([first], cause, NOW)}

    acked = ack_edit(_as_held(parent, metadata), ACKNOWLEDGED_BY, NOW)
    assert acked is not None
    again_run = {**copy.deepcopy(run), "id": "5b0c7a1e-0000-4000-8000-00000000r2", "endTime": REPEAT_END}
    again = replace(first, run=again_run, run_ids=(str(again_run["id"]),))
    edited = repeat_edit(_as_held(*acked), [again], cause, NOW)
    assert edited is not None
    repeated, repeat_metadata = edited
    repeat = {
        "parent": {**repeated, "metadata": repeat_metadata},
        "thread": [repeat_message(again, cause, NOW)],
    }

    ok_run = {"id": "5b0c7a1e-0000-4000-8000-00000000r3", "status": "Succeeded", "endTime": RECOVERED_END}
    recovered = recovered_edit(_as_held(repeated, repeat_metadata), SOURCE, SCAN, ok_run, NOW)
    assert recovered is not None
    closed = {
        "parent": {**recovered[0], "metadata": recovered[1]},
        "thread": [recovered_message(SOURCE, SCAN, ok_run, NOW)],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, step, note in (
        ("new", new, "a new failure: the parent (the route's user group mentioned) and its thread"),
        ("repeat", repeat, "acknowledged, then a repeat failure: the parent edited, one short reply"),
        ("recovered", closed, "the scan succeeded: the parent edited, the reply; the thread is closed"),
    ):
        path = out_dir / f"lifecycle-{name}.json"
        document = {"about": f"{SOURCE}/{SCAN} in {ACCOUNT}: {note}", **step}
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


def main() -> int:
    sys.path.insert(0, str(ROOT))
    for path in render(ROOT / "docs" / "blocks"):
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
