"""Block Kit of reports: content, Slack's limits, escaping of untrusted text, the Re-run button."""

from __future__ import annotations

import re
from typing import Any

from slack_sdk.models.blocks import Block

from checks.model import Finding, LastRun, ScanSummary, Status
from checks.sections import DEFAULT_DOCS_URL
from handlers.render.blocks import (
    RERUN_ACTION_ID,
    Message,
    progress_message,
    report_payload,
    summary_message,
    thread_messages,
)
from handlers.render.changes import compare, parse_rerun_value, rerun_value
from handlers.render.findings import MESSAGE_BUDGET, size
from tests.render.reports import HOSTILE, blocks_of, finding, report, sample_findings, texts

OUR_LINK = re.compile(re.escape(f"<{DEFAULT_DOCS_URL}#") + r"[a-z-]+\|Guide: [A-Za-z ]+>")


def assert_within_limits(messages: list[Message]) -> None:
    """Every block builds back with slack_sdk (its validators) and Slack's limits hold."""
    for message in messages:
        assert 0 < len(message["text"]) <= 4000
        assert 0 < len(message["blocks"]) <= 50
        assert size(message["blocks"]) <= MESSAGE_BUDGET
        for block in message["blocks"]:
            parsed = Block.parse(block)
            assert parsed is not None
            assert parsed.to_dict() == block
            if block["type"] == "header":
                assert len(block["text"]["text"]) <= 150
            elif block["type"] == "context":
                assert len(block["elements"]) <= 10
        for text in texts(message["blocks"]):
            assert 0 < len(text) <= 3000


def rerun_buttons(messages: list[Message]) -> list[dict[str, Any]]:
    return [
        element
        for block in blocks_of(messages)
        if block["type"] == "actions"
        for element in block["elements"]
        if element.get("action_id") == RERUN_ACTION_ID
    ]


def test_summary_one_line_per_problem_worst_first() -> None:
    findings = [
        finding("reader-role", Status.UNKNOWN, title="could not read role assignments"),
        *sample_findings(),
        finding("private-network", Status.WARN, title="self-hosted IR with an MSI scan"),
    ]
    message = summary_message(report(findings))
    assert_within_limits([message])
    header, body, ctx = message["blocks"]
    assert header["text"]["text"] == "✖ sales-adls (AdlsGen2) in contoso-pv: 4 problems"
    assert body["text"]["text"].splitlines() == [
        "✖ *scan-history* [weekly]: Scan weekly of sales-adls failed",
        "✖ *source-access* [weekly]: contoso-pv cannot read blobs in stsalesadls",
        "▲ *private-network* [weekly]: self-hosted IR with an MSI scan",
        "? *reader-role* [weekly]: could not read role assignments",
    ]
    counts = ctx["elements"][0]["text"]
    assert counts.startswith("2 fail · 1 warn · 1 unknown · 2 pass · 1 skipped") and "412 ms" in counts
    assert message["text"].startswith("✖ sales-adls (AdlsGen2) in contoso-pv: 4 problems")


def test_summary_of_a_healthy_source() -> None:
    message = summary_message(report([finding(status=Status.PASS), finding(status=Status.SKIPPED)]))
    assert message["blocks"][0]["text"]["text"] == "✔ sales-adls (AdlsGen2) in contoso-pv: no problems"
    assert "Every check passed" in message["blocks"][1]["text"]["text"]


def test_summary_of_many_problems_stays_one_section() -> None:
    findings = [finding(f"check-{i}", title="t" * 400) for i in range(80)]
    message = summary_message(report(findings))
    assert_within_limits([message])
    assert len(message["blocks"]) == 3
    assert message["blocks"][1]["text"]["text"].endswith("more in the thread")


def test_progress_message_escapes_what_the_user_typed() -> None:
    message = progress_message("<!channel> & co", "contoso-pv")
    assert_within_limits([message])
    assert message["text"] == "Checking &lt;!channel&gt; &amp; co in contoso-pv…"


def test_thread_shows_each_finding_with_fix_link_and_evidence() -> None:
    rep = report(sample_findings())
    messages = thread_messages(rep, rerun_value=rerun_value(rep))
    assert_within_limits(messages)
    assert len(messages) == 1
    all_text = "\n".join(texts(messages))
    assert (
        "✖ *contoso-pv cannot read blobs in stsalesadls* [weekly]\nGrant Storage Blob Data Reader."
        in all_text
    )
    assert "```\naz role assignment create --role 'Storage Blob Data Reader'\n```" in all_text
    link = (
        f"<{DEFAULT_DOCS_URL}#permission-the-credential-on-the-data-source|Guide: Permission the credential"
    )
    assert link in all_text
    assert "Evidence: granted: false" in all_text
    # passes and skips: one compact context line each, no detail, no fix
    assert "✔ reader-role [weekly]: contoso-pv can read stsalesadls" in all_text
    assert "– key-vault-secret [weekly]: Scan weekly: Key Vault secret" in all_text
    assert "Scan weekly of sales-adls failed" in all_text


def test_fix_comments_are_kept_in_the_code_block() -> None:
    fix = ["az keyvault secret list-versions --vault-name kv", "# In the Purview portal: set the version"]
    rep = report([finding(fix=fix)])
    all_text = "\n".join(texts(thread_messages(rep, rerun_value="x")))
    assert "```\naz keyvault secret list-versions --vault-name kv\n# In the Purview portal" in all_text


def test_rerun_button_on_the_last_message_only_and_parses_back() -> None:
    rep = report([finding(f"check-{i}", detail="d" * 2500) for i in range(30)])
    value = rerun_value(rep, scan="weekly")
    messages = thread_messages(rep, rerun_value=value)
    assert len(messages) > 1
    assert rerun_buttons(messages[:-1]) == []
    (button,) = rerun_buttons(messages[-1:])
    assert button["value"] == value
    assert button["text"]["text"] == "Re-run"
    assert parse_rerun_value(button["value"]).scan == "weekly"


def test_large_report_splits_into_messages_within_limits() -> None:
    findings = [
        finding(
            f"check-{i:02d}",
            [Status.FAIL, Status.WARN, Status.UNKNOWN, Status.PASS][i % 4],
            title=f"title-{i:02d} " + "t" * 200,
            detail=f"detail-{i:02d} " + ("line of detail & <x> " * 50 + "\n") * 10,  # about 10 kB
            fix=[f"az fix {i} " + "--opt value " * 300, "# comment"],
            evidence={"nested": {"k": ["v" * 100] * 20}, "error": "e" * 5000},
        )
        for i in range(80)
    ]
    rep = report(findings)
    messages = thread_messages(rep, rerun_value=rerun_value(rep))
    assert len(messages) > 3
    assert_within_limits(messages)
    all_text = "\n".join(texts(messages))
    for i in range(80):
        assert f"title-{i:02d}" in all_text  # nothing lost
    # a long detail is split across blocks, never cut: all of it is there
    squash = re.compile(r"\s+")
    detail = squash.sub("", "detail-00 " + "line of detail &amp; &lt;x&gt; " * 500)
    assert detail in squash.sub("", "".join(texts([m["blocks"] for m in messages])))


def test_changes_open_the_first_message() -> None:
    before = report(sample_findings())
    after = report([finding("key-vault-access", scan=None), finding("scan-history", Status.WARN)])
    changes = compare(rerun_value_keys(before), after)
    messages = thread_messages(after, rerun_value=rerun_value(after), changes=changes)
    first = messages[0]["blocks"][0]["text"]["text"]
    assert first.splitlines() == [
        "*Since the previous run*",
        "✔ fixed: source-access (weekly)",
        "✖ new: key-vault-access",
        "• still: scan-history (weekly): fail → warn",
    ]


def rerun_value_keys(rep: Any) -> list[str]:
    return parse_rerun_value(rerun_value(rep)).previous


def test_untrusted_text_is_escaped_everywhere() -> None:
    """A resource named `<!channel>` pings nobody: no raw `<`, `>` or bare `&` but in our own links."""
    hostile = Finding(
        check="source-access",
        status=Status.FAIL,
        section="permission-the-credential-on-the-data-source",
        title=f"title {HOSTILE}",
        detail=f"error: {HOSTILE}\n{HOSTILE}",
        fix=[f"az storage account show --name '{HOSTILE}'", f"# {HOSTILE}"],
        evidence={HOSTILE: HOSTILE, "nested": {"error": HOSTILE, "list": [HOSTILE]}},
        scan=f"scan {HOSTILE}",
    )
    quiet = Finding(
        check="reader-role",
        status=Status.PASS,
        section="registering-single-azure-data-source",
        title=HOSTILE,
        scan=HOSTILE,
    )
    run = LastRun(id=HOSTILE, status=HOSTILE, end_time=HOSTILE, error=HOSTILE, section=None)
    rep = report(
        [hostile, quiet],
        source=f"src {HOSTILE}",
        account=f"acct {HOSTILE}",
        kind=HOSTILE,
        scans=[
            ScanSummary(
                name=HOSTILE, kind=HOSTILE, integration_runtime=HOSTILE, credential=HOSTILE, last_run=run
            )
        ],
    )
    changes = compare([f"{HOSTILE}|{HOSTILE}|fail"], rep)
    payload = {
        **report_payload(rep, scan=HOSTILE, changes=changes),
        "progress": progress_message(HOSTILE, HOSTILE),
    }
    assert_within_limits([payload["summary"], *payload["thread"], payload["progress"]])
    for text in texts(payload):
        rest = OUR_LINK.sub("", text)
        assert "<" not in rest and ">" not in rest, rest
        assert not re.search(r"&(?!amp;|lt;|gt;)", rest), rest
        for fenced in re.findall(r"```\n(.*?)\n```", rest, flags=re.S):
            assert "```" not in fenced
    assert "&lt;!channel&gt;" in payload["summary"]["blocks"][0]["text"]["text"]
