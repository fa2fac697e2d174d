"""The slash command's and mentions' grammar: every sub-command, quoting, and a clear word for bad input."""

from __future__ import annotations

import pytest

from handlers.slack.parse import (
    USAGE,
    Check,
    Help,
    ListSources,
    Recheck,
    Runs,
    UsageError,
    parse_command,
    parse_mention,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Help()),
        ("   ", Help()),
        ("help", Help()),
        ("HELP", Help()),
        ("list", ListSources()),
        ("list sql", ListSources("sql")),
        ('list "finance sql"', ListSources("finance sql")),
        ("runs hr-sql", Runs("hr-sql")),
        ("runs hr-sql contoso-pv", Runs("hr-sql", "contoso-pv")),
        ("sales-adls", Check("sales-adls")),
        ("sales-adls contoso-pv", Check("sales-adls", "contoso-pv")),
        ("sales-adls --scan weekly", Check("sales-adls", None, "weekly")),
        ("sales-adls --scan=weekly contoso-pv", Check("sales-adls", "contoso-pv", "weekly")),
        ("sales-adls contoso-pv --scan weekly", Check("sales-adls", "contoso-pv", "weekly")),
        ('"finance sql" --scan "nightly full"', Check("finance sql", None, "nightly full")),
        ("\u201cfinance sql\u201d", Check("finance sql")),  # Slack's smart quotes
        ("check list", Check("list")),  # a source named like a sub-command
        ("check sales-adls --scan weekly", Check("sales-adls", None, "weekly")),
        ("a&amp;b", Check("a&b")),  # Slack sends & < > as entities
        ("&lt;!channel&gt;", Check("<!channel>")),
    ],
)
def test_commands(text: str, expected: object) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("sales-adls --account contoso-pv", "unknown option `--account`"),
        ("sales-adls -x", "unknown option `-x`"),
        ("sales-adls contoso-pv extra", "too many words: `extra`"),
        ("sales-adls --scan", "`--scan` needs a scan NAME"),
        ("sales-adls --scan --other", "`--scan` needs a scan NAME"),
        ("sales-adls --scan=", "`--scan` needs a scan NAME"),
        ("sales-adls --scan a --scan b", "`--scan` given twice"),
        ("--scan weekly", "a SOURCE is needed"),
        ('"sales-adls', "no closing quotation"),
        ('""', "empty name"),
        ("runs", "`runs` needs a SOURCE"),
        ("runs a b c", "too many words after `runs`"),
        ("runs a --scan x", "`runs` takes no option"),
        ("list a b", "at most one FILTER"),
        ("help me", "`help` takes nothing"),
        ("check", "`check` needs a SOURCE"),
        ("x" * 300, "longer than 256"),
    ],
)
def test_bad_input_says_what_was_wrong(text: str, problem: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_command(text)
    assert problem in str(raised.value)


def test_usage_has_examples_of_every_sub_command() -> None:
    for example in ("/purview-check sales-adls", "--scan", "list", "runs", "help", "recheck"):
        assert example in USAGE
    assert "<" not in USAGE  # nothing Slack could read as a link or a mention


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<@U0BOT> check sales-adls", Check("sales-adls")),
        (
            "<@U0BOT|purview-bot> check sales-adls contoso-pv --scan weekly",
            Check("sales-adls", "contoso-pv", "weekly"),
        ),
        ("<@U0BOT> recheck", Recheck()),
        ("<@U0BOT>", Help()),
        ("<@U0BOT> help", Help()),
        ("check sales-adls", Check("sales-adls")),  # a direct message: no mention
    ],
)
def test_mentions(text: str, expected: object) -> None:
    assert parse_mention(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("<@U0BOT> hello", "I don't know `hello`"),
        ("<@U0BOT> sales-adls", "I don't know `sales-adls`"),
        ("<@U0BOT> recheck now", "`recheck` takes nothing"),
        ("<@U0BOT> check", "`check` needs a SOURCE"),
    ],
)
def test_bad_mentions(text: str, problem: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_mention(text)
    assert problem in str(raised.value)
