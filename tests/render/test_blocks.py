"""Block Kit of reports: the first screen (verdict, cause, fix, fields, buttons), the quiet thread, the
Re-check diff in words, Slack's limits (slack-sdk models) and escaping of untrusted text."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from checks import sections
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
from handlers.render.changes import Changes, compare, finding_keys, parse_rerun_value, rerun_value
from handlers.render.findings import (
    EVIDENCE_ACTION_ID,
    MESSAGE_BUDGET,
    changes_message,
    changes_text,
    evidence_view,
    linkify,
    size,
)
from handlers.render.summary import GUIDE_ACTION_ID, OPEN_PURVIEW_ACTION_ID
from handlers.slack.evidence import find_finding, parse_evidence_value
from tests.render.reports import HOSTILE, blocks_of, finding, report, sample_findings, texts

RID = (
    "/subscriptions/7e2e9e63-bacb-4459-8c63-99796f32e7cf/resourceGroups/rg"
    "/providers/Microsoft.Storage/storageAccounts/stsalesadls"
)
OID = "a364a7de-0aab-448a-b69b-c65d39340d0f"
# the links and dates the bot writes itself (everything else in a text is escaped)
OURS = re.compile(
    r"<https://(?:learn\.microsoft\.com|portal\.azure\.com|web\.purview\.azure\.com)[^<>|]*\|[^<>]*>"
    r"|<!date\^\d+\^\{date_short_pretty\} \{time\}\|[^<>]*>"
)


def assert_valid(messages: list[Message]) -> None:
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
            for obj in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
                if isinstance(obj, dict) and obj.get("type") == "mrkdwn":
                    assert not obj.get("verbatim"), "verbatim mrkdwn: URLs in Azure's texts would not link"
        for text in texts(message["blocks"]):
            assert 0 < len(text) <= 3000


def buttons(messages: list[Message], action_id: str) -> list[dict[str, Any]]:
    return [
        element
        for block in blocks_of(messages)
        if block["type"] == "actions"
        for element in block["elements"]
        if element.get("action_id") == action_id
    ]


def test_first_screen_is_verdict_cause_fix_and_fields() -> None:
    rep = report(sample_findings())
    message = summary_message(rep, rerun_value=rerun_value(rep))
    assert_valid([message])
    header, verdict, fields, actions, counts = message["blocks"]
    assert header["text"]["text"] == "✖ FAIL: sales-adls (AdlsGen2) in contoso-pv"
    lines = verdict["text"]["text"].splitlines()
    assert lines[0] == "*scan weekly: contoso-pv cannot read blobs in stsalesadls*"
    assert lines[1].startswith("*Fix:* run `az role assignment create …`")
    assert [f["text"].split("\n")[0] for f in fields["fields"]] == ["*Last run*", "*Scan*", "*Runtime*"]
    assert "Azure IR" in fields["fields"][2]["text"]
    labels = [e["text"]["text"] for e in actions["elements"]]
    assert labels == ["Re-check", "Open in Purview", "Guide"]
    assert actions["elements"][1]["url"] == "https://web.purview.azure.com/resource/contoso-pv"
    assert actions["elements"][2]["url"] == f"{DEFAULT_DOCS_URL}#{sections.SOURCE_ACCESS}"
    assert [e["action_id"] for e in actions["elements"][1:]] == [OPEN_PURVIEW_ACTION_ID, GUIDE_ACTION_ID]
    # scan-history is background: one problem, not two
    assert counts["elements"][0]["text"].startswith("1 problem · 2 passed · 1 N/A · checked <!date^")
    # the push notification carries the cause
    assert (
        message["text"]
        == "FAIL sales-adls (contoso-pv): scan weekly: contoso-pv cannot read blobs in stsalesadls"
    )


def test_first_screen_of_a_healthy_source_and_of_one_the_bot_could_not_check() -> None:
    healthy = summary_message(report([finding(status=Status.PASS), finding(status=Status.SKIPPED)]))
    assert healthy["blocks"][0]["text"]["text"] == "✔ PASS: sales-adls (AdlsGen2) in contoso-pv"
    assert healthy["blocks"][1]["text"]["text"] == "Every check passed."
    assert healthy["text"] == "PASS sales-adls (contoso-pv): every check passed"

    unknowns = [
        finding("key-vault-access", Status.UNKNOWN, title="The bot lacks List on kv-finance"),
        finding("credential-rotation", Status.UNKNOWN, title="The bot lacks List on kv-finance"),
        finding("reader-role", Status.UNKNOWN, title="Graph refused the user lookup"),
        finding("private-network", Status.PASS),
    ]
    message = summary_message(report(unknowns))
    assert_valid([message])
    assert message["blocks"][0]["text"]["text"] == "? COULD NOT CHECK: sales-adls (AdlsGen2) in contoso-pv"
    assert message["blocks"][1]["text"]["text"] == (
        "*Nothing found wrong, but 3 checks could not run: The bot lacks List on kv-finance "
        "(and 1 other reason)*"
    )
    assert message["blocks"][-1]["elements"][0]["text"].startswith("3 could not run · 1 passed")


def test_could_not_check_is_said_apart_from_a_problem() -> None:
    findings = [
        *sample_findings(),
        finding("reader-role", Status.UNKNOWN, title="The bot lacks List on kv-finance"),
    ]
    message = summary_message(report(findings))
    lines = message["blocks"][1]["text"]["text"].splitlines()
    assert lines[-1] == "1 check could not run: The bot lacks List on kv-finance"
    assert "1 problem · 1 could not run" in message["blocks"][-1]["elements"][0]["text"]


def test_a_failed_scan_no_check_explains_leads_with_the_run() -> None:
    history = finding(
        "scan-history", title="Scan weekly of sales-adls failed at 08:00 UTC: unknown error", fix=[]
    )
    message = summary_message(report([history, finding(status=Status.PASS)]))
    assert message["blocks"][0]["text"]["text"].startswith("✖ FAIL:")
    text = message["blocks"][1]["text"]["text"]
    assert text.startswith("*Scan weekly of sales-adls failed at 08:00 UTC: unknown error*")
    assert "No check finds a cause now" in text


def test_a_warn_under_a_failed_run_is_labelled_with_its_own_word() -> None:
    message = summary_message(report([finding("scan-history", fix=[]), finding(status=Status.WARN)]))
    assert message["blocks"][1]["text"]["text"].startswith("*▲ WARN: scan weekly: contoso-pv")


def test_progress_names_the_source_escaped_and_who_asked_for_a_recheck() -> None:
    message = progress_message("<!channel> & co", "contoso-pv")
    assert_valid([message])
    assert message["text"] == "Checking &lt;!channel&gt; &amp; co in contoso-pv…"
    again = progress_message("sales-adls", "contoso-pv", requester="U123")
    assert (
        again["blocks"][0]["text"]["text"] == "⏳ Re-checking sales-adls in contoso-pv… requested by <@U123>"
    )


def test_thread_one_block_per_problem_quiet_line_and_error_once() -> None:
    error = (
        "Failed to access the data source with the managed identity. "
        "ErrorCode: AuthorizationPermissionMismatch"
    )
    run = LastRun(
        id="r1",
        status="Failed",
        end_time="2026-11-27T14:04:40.1187265Z",
        error=error,
        section=sections.SOURCE_ACCESS,
    )
    scan = ScanSummary(
        name="weekly", kind="AdlsGen2Msi", integration_runtime=None, credential=None, last_run=run
    )
    history = finding(
        "scan-history",
        title="Scan weekly of sales-adls failed",
        detail=f"Failing since … (2 failed run(s) in a row).\nError: {error}",
        fix=[],
        evidence={
            "consecutiveFailures": 2,
            "causeSince": "2026-11-22T02:02:00Z",
            "lastSuccess": {"endTime": "2026-11-15T02:41:17.5503128Z"},
        },
    )
    access = finding(
        detail=(
            f"contoso-pv (object id {OID}) holds Reader at {RID}. None grants read on {RID}. "
            f"The run said: {error}"
        ),
        fix=[
            "az role assignment create \\\n  --role 'Storage Blob Data Reader' \\\n  --scope \"$SCOPE\"",
            "In the Azure portal (https://portal.azure.com), open stsalesadls > Access control (IAM).",
        ],
    )
    rep = report(
        [
            history,
            access,
            *sample_findings()[2:],
            finding("integration-runtime", Status.WARN, title="out of date"),
        ],
        scans=[scan],
    )
    messages = thread_messages(rep, rerun_value=rerun_value(rep))
    assert_valid(messages)
    all_text = "\n".join(texts(messages))
    # the scan's runs: dates Slack localises, the error once, no 7-decimal ISO and no "run(s)"
    assert all_text.count("AuthorizationPermissionMismatch") == 1
    assert "(the scan's error, quoted above)" in all_text
    assert "2 failed runs in a row" in all_text and "run(s)" not in all_text
    assert not re.search(r"\d\d:\d\d:\d\d\.\d{7}", all_text)
    epoch = int(datetime(2026, 11, 27, 14, 4, 40, tzinfo=UTC).timestamp())
    assert f"<!date^{epoch}^{{date_short_pretty}} {{time}}|2026-11-27 14:04 UTC>" in all_text
    # one block per problem, worst first: status word, check, cause
    heads = [t for t in texts(messages) if t.startswith(("✖ FAIL ·", "▲ WARN ·"))]
    assert [h.splitlines()[0] for h in heads] == [
        "✖ FAIL · source-access · scan weekly",
        "▲ WARN · integration-runtime · scan weekly",
    ]
    # resource ids are names linked to the portal; a repeated GUID is shortened
    assert f"<https://portal.azure.com/#resource{RID}|stsalesadls>" in all_text
    assert RID not in OURS.sub("", all_text)
    assert all_text.count(OID) == 1
    # the fix: the command as a code block, the portal step as prose whose URL links
    assert (
        "*Fix*\n1. Run:\n```\naz role assignment create \\\n"
        "  --role 'Storage Blob Data Reader' \\\n  --scope \"$SCOPE\"\n```" in all_text
    )
    assert (
        "2. In the Azure portal (https://portal.azure.com), open stsalesadls &gt; Access control (IAM)."
        in all_text
    )
    assert (
        f"<{DEFAULT_DOCS_URL}#{sections.SOURCE_ACCESS}|Guide: Permission the credential on the data source>"
        in all_text
    )
    # passed and N/A checks on one line
    assert "✔ PASS: reader-role, azure-policy · – N/A: key-vault-secret" in all_text
    # the evidence behind a button, whose value names the finding
    (evidence_button, _) = buttons(messages, EVIDENCE_ACTION_ID)
    asked = parse_evidence_value(evidence_button["value"])
    assert (asked.account, asked.source, asked.check, asked.scan, asked.index) == (
        "contoso-pv",
        "sales-adls",
        "source-access",
        "weekly",
        0,
    )
    assert find_finding(rep.to_json(), asked) == access.to_json(rep.docs_base)
    assert "Evidence:" not in all_text and '"granted"' not in all_text


def test_rerun_button_on_the_parent_and_at_the_end_of_the_thread_only() -> None:
    rep = report([finding(f"check-{i}", detail="d" * 2500) for i in range(30)])
    value = rerun_value(rep, scan="weekly")
    messages = thread_messages(rep, rerun_value=value)
    assert len(messages) > 1
    assert buttons(messages[:-1], RERUN_ACTION_ID) == []
    (button,) = buttons(messages[-1:], RERUN_ACTION_ID)
    assert button["value"] == value and button["text"]["text"] == "Re-check"
    assert parse_rerun_value(button["value"]).scan == "weekly"
    (on_parent,) = buttons([summary_message(rep, rerun_value=value)], RERUN_ACTION_ID)
    assert on_parent["value"] == value


def test_large_report_splits_into_messages_within_limits() -> None:
    findings = [
        finding(
            f"check-{i:02d}",
            [Status.FAIL, Status.WARN, Status.UNKNOWN, Status.PASS][i % 4],
            title=f"title-{i:02d} " + "t" * 200,
            detail=f"detail-{i:02d} " + ("line of detail & <x> " * 50 + "\n") * 10,  # about 10 kB
            fix=[f"az fix {i} " + "--opt value " * 300, "Then check it."],
            evidence={"nested": {"k": ["v" * 100] * 20}, "error": "e" * 5000},
        )
        for i in range(80)
    ]
    rep = report(findings)
    messages = thread_messages(rep, rerun_value=rerun_value(rep))
    assert len(messages) > 3
    assert_valid(messages)
    all_text = "\n".join(texts(messages))
    for i in range(80):
        if i % 4 in (0, 1):
            assert f"title-{i:02d}" in all_text  # every problem is there
    assert_valid([summary_message(rep, rerun_value=rerun_value(rep))])


def test_changes_read_as_sentences() -> None:
    before = report(sample_findings())
    fixed = report(
        [
            finding("scan-history", fix=[]),  # the last run failed before the fix: not a problem any more
            finding("source-access", Status.PASS, title="contoso-pv can read blobs in stsalesadls"),
        ]
    )
    changes = compare(finding_keys(before), fixed)
    text = changes_text(changes, fixed, requester="U123")
    assert text.splitlines() == [
        "*Re-checked by <@U123>* <!date^1795852800^{date_short_pretty} {time}|08:00 UTC>",
        "✔ *Fixed:* contoso-pv can read blobs in stsalesadls (source-access, scan weekly).",
        "The last scan run predates the fix: run the scan to confirm.",
    ]
    # a fail that became a warn is one change, not "fixed" plus "new"
    warned = report([finding("source-access", Status.WARN, title="contoso-pv may read through ACLs")])
    text = changes_text(compare(finding_keys(before), warned), warned)
    assert text.splitlines()[1:] == [
        "▲ *Changed* (FAIL → WARN): contoso-pv may read through ACLs (source-access, scan weekly)"
    ]
    # nothing changed
    same = compare(finding_keys(before), before)
    assert "No change (checked by <@U9>): FAIL source-access, scan weekly." in changes_text(
        same, before, requester="U9"
    )
    # new problems
    new = report([*sample_findings(), finding("key-vault-access", scan=None, title="no List on kv-finance")])
    text = changes_text(compare(finding_keys(before), new), new)
    assert "✖ *New FAIL:* no List on kv-finance (key-vault-access)" in text
    assert "Still there: FAIL source-access, scan weekly." in text
    message = changes_message(changes, fixed, rerun_value=rerun_value(fixed), requester="U123")
    assert_valid([message])
    assert message["text"] == (
        "sales-adls: ✔ *Fixed:* contoso-pv can read blobs in stsalesadls (source-access, scan weekly)."
    )


def test_a_check_from_the_store_starts_with_what_changed_since() -> None:
    before = report(sample_findings())
    after = report([finding("key-vault-access", scan=None, title="no List")])
    changes = compare(finding_keys(before), after)
    dated = Changes(**{**changes.__dict__, "since": datetime(2026, 11, 27, 8, 0, tzinfo=UTC)})
    first = thread_messages(after, rerun_value=rerun_value(after), changes=dated)[0]["blocks"][0]
    lines = first["text"]["text"].splitlines()
    assert (
        lines[0]
        == "*Since the last check* (<!date^1795766400^{date_short_pretty} {time}|2026-11-27 08:00 UTC>)"
    )
    assert lines[1:] == [
        "✔ *Fixed:* source-access, scan weekly is no longer a problem.",
        "✖ *New FAIL:* no List (key-vault-access)",
        "The last scan run predates the fix: run the scan to confirm.",
    ]


def test_evidence_modal_is_a_valid_view() -> None:
    rep = report([finding(evidence={"resourceId": RID, "considered": [{"roleName": "Reader"}] * 300})])
    stored = json.loads(json.dumps(rep.to_json()))
    view = evidence_view(stored["findings"][0], checked_at=rep.started_at)
    parsed = View(**view)
    assert parsed.to_dict() == view and len(view["blocks"]) <= 100
    body = "\n".join(texts(view["blocks"]))
    assert '"roleName": "Reader"' in body and "✖ FAIL · source-access · scan weekly" in body


def test_linkify_names_resources_and_keeps_the_rest_escaped() -> None:
    assert linkify(f"at {RID}. <!here> {OID} and {OID}") == (
        f"at <https://portal.azure.com/#resource{RID}|stsalesadls>. &lt;!here&gt; {OID} and a364a7de…"
    )


def test_untrusted_text_is_escaped_everywhere() -> None:
    """A resource named `<!channel>` pings nobody: no raw `<`, `>` or bare `&` but in our own links."""
    hostile = Finding(
        check="source-access",
        status=Status.FAIL,
        section="permission-the-credential-on-the-data-source",
        title=f"title {HOSTILE} @channel",
        detail=f"error: {HOSTILE}\n{HOSTILE} @here",
        fix=[f"az storage account show --name '{HOSTILE}'", f"Open {HOSTILE} @everyone"],
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
        "diff": changes_message(changes, rep, rerun_value=rerun_value(rep)),
        "modal": evidence_view(rep.to_json()["findings"][0], checked_at=None),
    }
    assert_valid([payload["summary"], *payload["thread"], payload["progress"], payload["diff"]])
    for text in texts(payload):
        rest = OURS.sub("", text)
        assert "<" not in rest and ">" not in rest, rest
        assert not re.search(r"&(?!amp;|lt;|gt;)", rest), rest
        assert not re.search(r"(?<![\w.+-])@(channel|here|everyone)", rest), rest
        for fenced in re.findall(r"```\n(.*?)\n```", rest, flags=re.S):
            assert "```" not in fenced
    assert "&lt;!channel&gt;" in payload["summary"]["blocks"][0]["text"]["text"]


def test_an_interrupted_report_says_so_with_re_check_or_the_command() -> None:
    from handlers.render.texts import interrupted_message

    message = interrupted_message("sales-adls", "contoso-pv", "weekly")
    assert_valid([message])
    assert "interrupted by a restart" in message["text"]
    (button,) = buttons([message], RERUN_ACTION_ID)
    request = parse_rerun_value(button["value"])
    assert (request.source, request.scan, request.truncated) == ("sales-adls", "weekly", True)
    long = interrupted_message("s" * 256, "/subscriptions/x/resourceGroups/rg/" + "a" * 1900, None)
    assert buttons([long], RERUN_ACTION_ID) == [] and "/purview-check " in long["text"]
