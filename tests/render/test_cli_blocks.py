"""`purview-bot check … --format blocks` on the sample tenant: valid Block Kit, the fix in a code block."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from handlers.render.changes import parse_rerun_value
from tests.e2e.conftest import run_cli
from tests.render.reports import blocks_of, texts


async def test_cli_prints_block_kit_of_the_sample_report() -> None:
    result = await run_cli("check", "sales-adls", "--sandbox", "--format", "blocks")
    assert "Traceback" not in result.stderr, result.stderr
    assert result.code == 1  # source-access fails
    payload = result.json()
    assert set(payload) == {"summary", "thread"}
    messages = [payload["summary"], *payload["thread"]]
    for message in messages:
        assert 0 < len(message["text"]) <= 4000 and 0 < len(message["blocks"]) <= 50
    for block in blocks_of(messages):
        parsed = Block.parse(block)
        assert parsed is not None and parsed.to_dict() == block

    summary = "\n".join(texts(payload["summary"]["blocks"]))
    assert "✖ FAIL: sales-adls (AdlsGen2) in contoso-pv" in summary
    assert "*scan weekly: contoso-pv cannot read blobs in stsalesadls" in summary
    assert "1 problem ·" in summary  # the failed run is background, not a second problem

    thread = list(texts([m["blocks"] for m in payload["thread"]]))
    fix = [t for t in thread if "```\nSCOPE=/subscriptions/" in t and "\naz role assignment create \\\n" in t]
    assert fix and "Storage Blob Data Reader" in fix[0] and fix[0].endswith("\n```")

    buttons = [e for b in blocks_of(payload["thread"]) if b["type"] == "actions" for e in b["elements"]]
    request = parse_rerun_value(buttons[-1]["value"])
    assert (request.source, request.account) == ("sales-adls", "contoso-pv")
    assert "source-access|weekly|fail" in request.previous
