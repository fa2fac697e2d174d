"""Escaping, fencing and cutting of untrusted text for Slack."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime

import pytest

from checks.diagnose import NameNotFoundError
from checks.model import Finding, LastRun, ScanSummary, Status
from handlers.ports import Mute, ScanCursor, ScanRuns, StoredReport
from handlers.render.blocks import progress_message, report_payload
from handlers.render.changes import compare
from handlers.render.escape import (
    BIDI_CONTROLS,
    MRKDWN_LOOKALIKES,
    code,
    code_block,
    code_blocks,
    escape,
    escape_quoted,
    escape_url,
    safe_cut,
    split_text,
    truncate,
)
from handlers.render.findings import doc_link, evidence_view
from handlers.render.runs import runs_text, sources_text
from handlers.render.texts import failure_message, not_found_text
from handlers.render.watch_posts import (
    failure_parent,
    group_thread,
    recovered_message,
    repeat_message,
    storm_list,
    storm_parent,
)
from handlers.slack.home import AccountState, gather_sources, home_view
from handlers.watch.model import Failure
from tests.render.reports import report, texts

ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("<@U1>", "&lt;\uff20U1&gt;"),
        (
            "@channel @here hi @dana, mail dana@contoso.com",
            "\uff20channel \uff20here hi \uff20dana, mail dana@contoso.com",
        ),
        ("<https://evil|click>", "&lt;https://evil|click&gt;"),
        ("a & b", "a &amp; b"),
        ("&lt;", "&amp;lt;"),  # an entity in the input is shown as typed, not decoded
        ("plain", "plain"),
    ],
)
def test_escape(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped


def test_inline_code_cannot_be_closed_early() -> None:
    out = code("rm `id` <!channel>\nnext")
    assert out.startswith("`") and out.endswith("`")
    assert out[1:-1].count("`") == 0
    assert "<" not in out and "\n" not in out


def test_code_block_cannot_be_broken_out_of() -> None:
    for raw in ("```\n<!channel>\n```", "`", "a``", "````x````", "echo `date`"):
        block = code_block(raw)
        assert block.startswith("```\n") and block.endswith("\n```")
        inner = block[4:-4]
        assert "```" not in inner
        assert "<" not in inner
    assert code_block("echo `date`") == "```\necho `date`\n```"  # single backticks are harmless


def test_code_blocks_split_long_fixes_within_the_limit() -> None:
    fix = "\n".join(f"az thing {i} --name '<&>' ```" for i in range(400))
    blocks = code_blocks(fix, 3000)
    assert len(blocks) > 1
    for block in blocks:
        assert len(block) <= 3000 and block.startswith("```\n") and block.endswith("\n```")
        assert "```" not in block[4:-4]
        assert not ENTITY.search(block)


def test_truncate_never_cuts_an_entity() -> None:
    text = escape("&" * 50)
    for limit in range(1, 60):
        out = truncate(text, limit)
        assert len(out) <= limit
        assert not ENTITY.search(out.removesuffix("…")), (limit, out)


def test_safe_cut_keeps_links_whole() -> None:
    text = "see <https://x.example/a|the guide> now"
    assert safe_cut(text, 10) == 4
    assert safe_cut(text, len(text)) == len(text)


def test_split_text_random_keeps_everything_and_every_entity() -> None:
    rng = random.Random(7)
    alphabet = "ab <>&\n`"
    for _ in range(200):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
        escaped = escape(raw)
        chunks = split_text(escaped, 37)
        assert all(len(c) <= 37 for c in chunks)
        assert all(not ENTITY.search(c) for c in chunks)
        squash = re.compile(r"\s+")
        assert squash.sub("", "".join(chunks)) == squash.sub("", escaped)


def test_split_text_rejects_a_limit_too_small() -> None:
    with pytest.raises(ValueError):
        split_text("abc", 3)


# --- issue 9, item 13: formatting and direction characters --------------------------------------------

# mrkdwn formatting, a quote, and bidirectional controls (RLO/PDF, isolates, RLM) as Azure might name things
FORMATTED = (
    "x *bold* _it_ ~gone~ `tick` ```fence``` \u202eevil\u202c \u2066iso\u2069 \u200fmark "
    "@channel <!here>\n> quote"
)
RAW_FORMATTING = ("*bold*", "_it_", "~gone~")
BLOCK = re.compile(r"```.*?```", re.S)
SPAN = re.compile(r"`[^`\n]*`")


def formatting_leaks(text: str) -> list[str]:
    """What of FORMATTED Slack would render as formatting or reversed text in `text`: bidirectional
    controls anywhere; backticks outside code blocks; `*`, `_`, `~` and `>` quotes outside code spans
    and blocks (whose content Slack renders literally)."""
    found = [f"U+{ord(c):04X}" for c in BIDI_CONTROLS if c in text]
    prose = BLOCK.sub("", text)
    found += [t for t in ("`tick", "tick`", "``fence", "fence``") if t in prose]
    prose = SPAN.sub("", prose)
    found += [t for t in RAW_FORMATTING if t in prose]
    found += [line for line in prose.splitlines() if line.lstrip().startswith(("&gt;", ">"))]
    found += [t for t in ("<!here>", " @channel") if t in prose]  # would ping (verbatim is off)
    return found


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("*bold*", "\u2217bold\u2217"),
        ("_it_", "\u02cdit\u02cd"),
        ("~gone~", "\u223cgone\u223c"),
        ("`tick`", "\u02cbtick\u02cb"),
        ("a\n> quote", "a\n\u203a quote"),
        ("  > quote", "  \u203a quote"),
        ("1 > 0", "1 &gt; 0"),  # a `>` within a line quotes nothing
        ("evil\u202egnp.exe", "evil[U+202E]gnp.exe"),
        ("\u2066a\u2069 \u200e\u200f\u061c", "[U+2066]a[U+2069] [U+200E][U+200F][U+061C]"),
        ("sales_adls-01", "sales\u02cdadls-01"),
    ],
)
def test_escape_neutralises_formatting_and_direction(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped
    assert not formatting_leaks(escape(raw))


def test_every_bidi_control_is_made_visible_in_every_context() -> None:
    for control in BIDI_CONTROLS:
        for out in (escape(f"a{control}b"), code(f"a{control}b"), code_block(f"a{control}b")):
            assert control not in out and f"[U+{ord(control):04X}]" in out
        assert control not in escape_url(f"https://x.example/{control}")


def test_look_alikes_are_not_formatting_characters() -> None:
    for char, lookalike in MRKDWN_LOOKALIKES.items():
        assert lookalike != char and lookalike not in "*_~`<>&" and len(lookalike) == 1


def test_code_keeps_commands_copy_pasteable() -> None:
    command = "az storage account show --name st_sales~1 --query 'properties.*' -o tsv"
    assert code(command) == f"`{command}`"  # code spans show * _ ~ literally
    assert code_block(command) == f"```\n{command}\n```"
    assert code_blocks(command, 3000) == [f"```\n{command}\n```"]
    assert code_block("echo `date` > out") == "```\necho `date` &gt; out\n```"


def test_quoted_words_in_a_sentence_the_bot_wrote_stay_code() -> None:
    assert escape_quoted("`--collection` needs a NAME") == "`--collection` needs a NAME"
    assert escape_quoted("unknown option `*x*_y<!here>` (only `--scan NAME`) *b*") == (
        "unknown option `*x*_y&lt;!here&gt;` (only `--scan NAME`) \u2217b\u2217"
    )
    for typed in ("a`b", "```", "`x` `", "\u202e`", "`a\nb`"):
        out = escape_quoted(f"I don't know `{typed}`")
        assert not formatting_leaks(out) and "<" not in out, out


def test_a_link_keeps_its_url() -> None:
    url = "https://learn.microsoft.com/purview/some_page~v2#a*b"
    assert escape_url(url) == url
    assert doc_link("https://docs.example/guide_v2~/", "source-access").startswith(
        "<https://docs.example/guide_v2~/#source-access|"
    )
    assert escape_url("https://x.example/a|b<c>&") == "https://x.example/a%7Cb&lt;c&gt;&amp;"


def _hostile_report_payloads() -> list[object]:
    hostile = Finding(
        check="source-access",
        status=Status.FAIL,
        section="permission-the-credential-on-the-data-source",
        title=f"title {FORMATTED}",
        detail=f"error: {FORMATTED}\n{FORMATTED}",
        fix=[f"az storage account show --name '{FORMATTED}'", f"# {FORMATTED}"],
        evidence={FORMATTED: FORMATTED, "nested": {"error": FORMATTED, "list": [FORMATTED]}},
        scan=f"scan {FORMATTED}",
    )
    quiet = Finding(
        check="reader-role",
        status=Status.PASS,
        section="registering-single-azure-data-source",
        title=FORMATTED,
        scan=FORMATTED,
    )
    run = LastRun(id=FORMATTED, status=FORMATTED, end_time=FORMATTED, error=FORMATTED, section=None)
    scan = ScanSummary(
        name=FORMATTED, kind=FORMATTED, integration_runtime=FORMATTED, credential=FORMATTED, last_run=run
    )
    rep = report([hostile, quiet], source=f"src {FORMATTED}", account=FORMATTED, kind=FORMATTED, scans=[scan])
    changes = compare([f"{FORMATTED}|{FORMATTED}|fail"], rep)
    return [
        report_payload(rep, scan=FORMATTED, changes=changes),
        progress_message(FORMATTED, FORMATTED),
        failure_message(FORMATTED, FORMATTED),
    ]


def _hostile_texts() -> list[str]:
    now = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    run = {"id": FORMATTED, "status": "Failed", "endTime": "2026-11-28T07:58:00Z", "errorMessage": FORMATTED}
    failures = [
        Failure(
            FORMATTED, f"src{i} {FORMATTED}", FORMATTED, FORMATTED, run, (f"r{i}",), diagnosis_error=FORMATTED
        )
        for i in range(3)
    ]
    cause = Finding(
        check="key-vault-access", status=Status.FAIL, section="x", title=FORMATTED, detail=FORMATTED
    )
    scans = [ScanRuns(scan={"name": FORMATTED}, runs=[run])]
    sources = [
        {"name": FORMATTED, "kind": FORMATTED, "properties": {"collection": {"referenceName": FORMATTED}}}
    ]
    payloads: list[object] = [
        *_hostile_report_payloads(),
        failure_parent(failures[0], cause, now),
        failure_parent(failures[0], None, now),
        storm_parent(failures, cause, now),
        group_thread(failures, cause, now),
        group_thread(failures[:1], None, now),
        recovered_message(FORMATTED, FORMATTED, run, now),
        repeat_message(failures[0], cause, now),
        storm_list(failures, now),
        evidence_view(
            {**cause.to_json("https://docs.example/"), "evidence": {FORMATTED: FORMATTED}, "scan": FORMATTED},
            checked_at=now,
        ),
        home_view([AccountState(FORMATTED, gather_sources(*_hostile_home(now)))], now),
    ]
    return [
        *(t for p in payloads for t in texts(p)),
        not_found_text(NameNotFoundError("data source", FORMATTED, [FORMATTED])),
        runs_text(FORMATTED, FORMATTED, scans, "https://docs.example/"),
        sources_text(FORMATTED, sources, None),
        sources_text(FORMATTED, sources, FORMATTED),
    ]


def _hostile_home(now: datetime) -> tuple[list[ScanCursor], list[StoredReport], list[Mute]]:
    """The Home tab's inputs with hostile names: a failing scan, a stored report, a mute."""
    cursor = ScanCursor(FORMATTED, FORMATTED, FORMATTED, last_status=FORMATTED, failing_since=now)
    stored = StoredReport(FORMATTED, FORMATTED, {"status": "fail", "startedAt": FORMATTED}, now)
    return [cursor], [stored], [Mute(FORMATTED, FORMATTED, now.replace(year=2027), muted_by=FORMATTED)]


def test_every_renderer_shows_formatting_and_direction_characters_literally() -> None:
    rendered = _hostile_texts()
    problems = [(leak, text[:120]) for text in rendered for leak in formatting_leaks(text)]
    assert not problems, "\n".join(map(str, problems))
    everything = "\n".join(rendered)
    # the hostile text did reach the messages: as look-alikes in prose, as typed in code
    assert (
        "\u2217bold\u2217" in everything
        and "\u02cdit\u02cd" in everything
        and "\u223cgone\u223c" in everything
    )
    assert "\u02cbtick\u02cb" in everything and "[U+202E]evil[U+202C]" in everything
    assert "`x *bold* _it_ ~gone~" in everything  # a name in a code span, as typed


def test_a_url_in_untrusted_text_stays_a_working_link() -> None:
    """`verbatim` is off so Slack links URLs in Azure's texts: their `_` and `~` are kept, `&` is an
    entity (Slack decodes it), trailing punctuation and formatting are not part of the URL."""
    text = "see https://learn.microsoft.com/a_b~c/d?x=1&y=2. *https://x.example/y* @here"
    assert escape(text) == (
        "see https://learn.microsoft.com/a_b~c/d?x=1&amp;y=2. \u2217https://x.example/y\u2217 \uff20here"
    )
    assert escape("https://evil.example/<!channel>|x") == "https://evil.example/&lt;!channel&gt;|x"
