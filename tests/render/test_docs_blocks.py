"""scripts/render-docs: the rendered reports in docs/blocks/ are regenerated, valid Block Kit, and read as
the first screen promises."""

from __future__ import annotations

import json
import types
from pathlib import Path

from slack_sdk.models.blocks import Block

from tests.render.reports import blocks_of, texts

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "render-docs"


def _script() -> types.ModuleType:
    module = types.ModuleType("render_docs")
    module.__file__ = str(SCRIPT)
    exec(compile(SCRIPT.read_text(encoding="utf-8"), str(SCRIPT), "exec"), module.__dict__)
    return module


def _valid(document: object) -> None:
    blocks = list(blocks_of(document))
    assert blocks
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None and parsed.to_dict() == block


def test_render_docs_writes_three_reports_and_a_recheck(tmp_path: Path) -> None:
    written = _script().render(tmp_path)
    names = sorted(p.name for p in written)
    assert names == [
        "report-finance-sql.json",
        "report-hr-sql.json",
        "report-sales-adls-recheck.json",
        "report-sales-adls.json",
    ]
    for path in written:
        document = json.loads(path.read_text(encoding="utf-8"))
        _valid(document)
        assert document["summary"]["text"].startswith(("FAIL ", "WARN ", "COULD NOT CHECK ", "PASS "))
    sales = json.loads((tmp_path / "report-sales-adls.json").read_text(encoding="utf-8"))
    assert "it has Reader but no data role" in sales["summary"]["text"]
    recheck = json.loads((tmp_path / "report-sales-adls-recheck.json").read_text(encoding="utf-8"))
    reply = "\n".join(texts(recheck["reply"]["blocks"]))
    assert "*Fixed:* contoso-pv can read blobs in stsalesadls" in reply
    assert "The last scan run predates the fix: run the scan to confirm." in reply


def test_the_docs_in_the_repository_are_valid_block_kit() -> None:
    for path in sorted((ROOT / "docs" / "blocks").glob("report-*.json")):
        _valid(json.loads(path.read_text(encoding="utf-8")))
