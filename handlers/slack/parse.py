"""The text of `/purview-check` and of mentions, parsed strictly into commands (pure: no Slack, no I/O).

Slack sends the text as typed, with `&`, `<`, `>` as entities and quotes possibly "smart"; names with
spaces can be quoted. Anything unexpected is a `UsageError` whose message says what was wrong, shown
with `USAGE` rather than guessed at.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

COMMAND = "/purview-check"

USAGE = f"""*Usage*
`{COMMAND} SOURCE [ACCOUNT] [--scan NAME]`  diagnose a data source; the report goes to this channel
`{COMMAND} list [FILTER]`  the data sources (name, kind, collection), only to you
`{COMMAND} runs SOURCE [ACCOUNT]`  the latest runs of each scan of a source, only to you
`{COMMAND} watch [ACCOUNT] [--collection NAME | --source NAME]`  post this scope's scan failures here \
too (the on-call channel still gets them)
`{COMMAND} unwatch [ACCOUNT] [--collection NAME | --source NAME] [--channel CHANNEL]`  stop that; another \
channel's watch from the on-call channel or as an admin
`{COMMAND} watches [--all]`  what this channel (or every channel) watches, only to you
`{COMMAND} mute SOURCE [ACCOUNT] DURATION`  hold back the automatic posts of a source's failures for \
30m, 4h, 2d… (they are still recorded); `{COMMAND} unmute SOURCE [ACCOUNT]` ends it
`{COMMAND} changes SOURCE [ACCOUNT] [7d]`  who changed what on the source's resources since its last good \
scan (or in the last 7 days), likely triggers first, only to you
`{COMMAND} help`  this text
*Examples*
`{COMMAND} sales-adls`
`{COMMAND} sales-adls contoso-pv --scan weekly`
`{COMMAND} "finance sql" --scan=nightly`
`{COMMAND} list sql`
`{COMMAND} runs hr-sql`
`{COMMAND} watch --collection sales`
`{COMMAND} unwatch contoso-pv --source hr-sql`
`{COMMAND} watches --all`
`{COMMAND} unwatch --source hr-sql --channel C0123ABCD`  a channel by its id (its details show it)
`{COMMAND} check list`  a source whose name is a sub-command
In a thread: `@purview-bot check SOURCE [ACCOUNT] [--scan NAME]`, or `@purview-bot recheck` in a thread \
the bot started."""

MENTION_USAGE = """Mention me with:
`@purview-bot check SOURCE [ACCOUNT] [--scan NAME]`  the report, in this thread
`@purview-bot recheck`  in a thread I started: run that diagnosis again and say what changed
In a direct message, the same without the mention."""

MAX_WORD = 256  # longer than any Purview name
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,30}$")
# a channel as Slack sends it when the command escapes channels (`<#C123|name>`), or its bare id
_CHANNEL_LINK = re.compile(r"^<#([A-Za-z0-9]+)(?:\|[^>]*)?>$")
_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2018": "'", "\u2019": "'"})
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")


class UsageError(ValueError):
    """The text is not a valid command; the message says why in one sentence."""


@dataclass(frozen=True)
class Help:
    """Show the usage."""


@dataclass(frozen=True)
class ListSources:
    filter: str | None = None


@dataclass(frozen=True)
class Runs:
    source: str
    account: str | None = None


@dataclass(frozen=True)
class Check:
    source: str
    account: str | None = None
    scan: str | None = None


@dataclass(frozen=True)
class Recheck:
    """`recheck` in a thread: the source comes from the thread's report."""


@dataclass(frozen=True)
class WatchScope:
    """What a channel watches: an account (None: the default one), or one collection or source of it."""

    account: str | None = None
    collection: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class AddWatch(WatchScope):
    """`watch [ACCOUNT] [--collection NAME | --source NAME]`."""


@dataclass(frozen=True)
class RemoveWatch(WatchScope):
    """`unwatch [ACCOUNT] [--collection NAME | --source NAME] [--channel CHANNEL]`; `channel` None: this
    channel's watch."""

    channel: str | None = None


@dataclass(frozen=True)
class ListWatches:
    """`watches [--all]`: this channel's watches, or every channel's."""

    every: bool = False


@dataclass(frozen=True)
class MuteSource:
    """`mute SOURCE [ACCOUNT] DURATION`: the source's automatic failure posts held back for `seconds`."""

    source: str
    seconds: int
    account: str | None = None


@dataclass(frozen=True)
class UnmuteSource:
    """`unmute SOURCE [ACCOUNT]`."""

    source: str
    account: str | None = None


MAX_MUTE_SECONDS = 30 * 86400
_DURATION = re.compile(r"^(\d{1,6})([mhd])$", re.IGNORECASE)
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class WhatChanged:
    """`changes SOURCE [ACCOUNT] [7d]`: who changed what on the source's resources (issue 11); `days`
    None: since the last good scan."""

    source: str
    account: str | None = None
    days: int | None = None


MAX_CHANGES_DAYS = 90  # the Activity Log's retention
_DAYS = re.compile(r"^(\d{1,3})d$", re.IGNORECASE)
_LOOKS_LIKE_DAYS = re.compile(r"^\d+(d|days?|w|weeks?|h|m)?$", re.IGNORECASE)

Command = (
    Help
    | ListSources
    | Runs
    | Check
    | AddWatch
    | RemoveWatch
    | ListWatches
    | MuteSource
    | UnmuteSource
    | WhatChanged
)
MentionCommand = Help | Check | Recheck

_SUBCOMMANDS = {"help", "list", "runs", "check", "watch", "unwatch", "watches", "mute", "unmute", "changes"}
_SCOPE_OPTIONS = ("--collection", "--source")
_CHANNEL_OPTION = "--channel"


def parse_command(text: str) -> Command:
    """The slash command's text as a command; raises UsageError."""
    words = split_words(text)
    if not words:
        return Help()
    head, rest = words[0].lower(), words[1:]
    if head == "help":
        _no_options(rest, "help")
        if rest:
            raise UsageError("`help` takes nothing after it")
        return Help()
    if head == "list":
        _no_options(rest, "list")
        if len(rest) > 1:
            raise UsageError("`list` takes at most one FILTER (quote it if it has spaces)")
        return ListSources(rest[0] if rest else None)
    if head == "runs":
        _no_options(rest, "runs")
        if not rest:
            raise UsageError("`runs` needs a SOURCE: `runs SOURCE [ACCOUNT]`")
        if len(rest) > 2:
            raise UsageError(f"too many words after `runs`: {_quoted(rest[2:])}")
        return Runs(rest[0], rest[1] if len(rest) > 1 else None)
    if head == "check":
        if not rest:
            raise UsageError("`check` needs a SOURCE: `check SOURCE [ACCOUNT] [--scan NAME]`")
        return parse_check(rest)
    if head == "watch":
        scope = parse_scope(rest, head)
        return AddWatch(scope.account, scope.collection, scope.source)
    if head == "unwatch":
        rest, channel = _channel_option(rest)
        scope = parse_scope(rest, head)
        return RemoveWatch(scope.account, scope.collection, scope.source, channel)
    if head == "watches":
        every = [w for w in rest if w.lower() == "--all"]
        others = [w for w in rest if w.lower() != "--all"]
        _no_options(others, "watches")
        if others:
            raise UsageError(
                "`watches` takes only `--all` (it lists this channel's watches, or every channel's)"
            )
        return ListWatches(every=bool(every))
    if head == "changes":
        return parse_changes(rest)
    if head == "mute":
        return parse_mute(rest)
    if head == "unmute":
        _no_options(rest, "unmute")
        if not rest or len(rest) > 2:
            raise UsageError("`unmute` needs a SOURCE: `unmute SOURCE [ACCOUNT]`")
        return UnmuteSource(rest[0], rest[1] if len(rest) > 1 else None)
    return parse_check(words)


def parse_changes(words: list[str]) -> WhatChanged:
    """`SOURCE [ACCOUNT] [DAYS]`, DAYS like `7d` (1 to 90: the Activity Log keeps 90 days)."""
    _no_options(words, "changes")
    days: int | None = None
    if words and (match := _DAYS.match(words[-1])):
        days = int(match.group(1))
        if not 0 < days <= MAX_CHANGES_DAYS:
            raise UsageError("`changes` looks back 1 to 90 days (the Activity Log keeps 90)")
        words = words[:-1]
    elif len(words) > 1 and _LOOKS_LIKE_DAYS.match(words[-1]):  # `30`, `2w`, `1000d`: not an account
        raise UsageError(f"`{_clip(words[-1])}` is not a number of days: give 1d to 90d, e.g. `7d`")
    if not words:
        raise UsageError("`changes` needs a SOURCE: `changes SOURCE [ACCOUNT] [7d]`")
    if len(words) > 2:
        raise UsageError(
            f"too many words after `changes`: {_quoted(words[2:])} (`changes SOURCE [ACCOUNT] [7d]`)"
        )
    return WhatChanged(words[0], words[1] if len(words) > 1 else None, days)


def parse_mute(words: list[str]) -> MuteSource:
    """`SOURCE [ACCOUNT] DURATION`, DURATION a number and `m`, `h` or `d` (at most 30 days)."""
    _no_options(words, "mute")
    if len(words) < 2 or len(words) > 3:
        raise UsageError("`mute` needs a SOURCE and a DURATION: `mute SOURCE [ACCOUNT] 4h`")
    duration = _DURATION.match(words[-1])
    if duration is None:
        raise UsageError(f"`{_clip(words[-1])}` is not a duration: give minutes, hours or days (30m, 4h, 2d)")
    seconds = int(duration.group(1)) * _UNIT_SECONDS[duration.group(2).lower()]
    if not 0 < seconds <= MAX_MUTE_SECONDS:
        raise UsageError("a mute lasts from 1 minute to 30 days")
    return MuteSource(words[0], seconds, words[1] if len(words) == 3 else None)


def parse_mention(text: str) -> MentionCommand:
    """A mention's or a direct message's text (mentions of users removed); raises UsageError."""
    words = split_words(_MENTION.sub(" ", text))
    if not words or words[0].lower() == "help":
        return Help()
    head, rest = words[0].lower(), words[1:]
    if head == "recheck":
        if rest:
            raise UsageError("`recheck` takes nothing after it (it re-runs the report of this thread)")
        return Recheck()
    if head == "check":
        if not rest:
            raise UsageError("`check` needs a SOURCE: `check SOURCE [ACCOUNT] [--scan NAME]`")
        return parse_check(rest)
    raise UsageError(f"I don't know `{_clip(words[0])}`")


def parse_check(words: list[str]) -> Check:
    """`SOURCE [ACCOUNT] [--scan NAME]`, the option anywhere after the source."""
    positional: list[str] = []
    scan: str | None = None
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--scan" or word.startswith("--scan="):
            if scan is not None:
                raise UsageError("`--scan` given twice")
            if word == "--scan":
                if i + 1 >= len(words) or words[i + 1].startswith("--"):
                    raise UsageError("`--scan` needs a scan NAME")
                scan = words[i + 1]
                i += 2
            else:
                scan = word.removeprefix("--scan=")
                i += 1
            if not scan:
                raise UsageError("`--scan` needs a scan NAME")
            continue
        if word.startswith("-") and len(word) > 1:
            raise UsageError(f"unknown option `{_clip(word)}` (the only option is `--scan NAME`)")
        positional.append(word)
        i += 1
    if not positional:
        raise UsageError("a SOURCE is needed before the options")
    if len(positional) > 2:
        raise UsageError(
            f"too many words: {_quoted(positional[2:])} "
            "(expected `SOURCE [ACCOUNT]`; quote names with spaces)"
        )
    return Check(positional[0], positional[1] if len(positional) > 1 else None, scan)


def parse_scope(words: list[str], sub: str) -> WatchScope:
    """`[ACCOUNT] [--collection NAME | --source NAME]` (the option before or after the account)."""
    positional: list[str] = []
    option: tuple[str, str] | None = None
    i = 0
    while i < len(words):
        word = words[i]
        name, eq, inline = word.partition("=")
        if name in _SCOPE_OPTIONS:
            if option is not None:
                raise UsageError(f"`{sub}` takes one of `--collection NAME` or `--source NAME`, once")
            if eq:
                value, i = inline, i + 1
            elif i + 1 < len(words) and not words[i + 1].startswith("--"):
                value, i = words[i + 1], i + 2
            else:
                value, i = "", i + 1
            if not value.strip():
                raise UsageError(f"`{name}` needs a NAME")
            option = (name, value)
            continue
        if word.startswith("-") and len(word) > 1:
            raise UsageError(
                f"unknown option `{_clip(word)}` (`{sub}` takes `--collection NAME` or `--source NAME`)"
            )
        positional.append(word)
        i += 1
    if len(positional) > 1:
        raise UsageError(
            f"too many words after `{sub}`: {_quoted(positional[1:])} "
            f"(expected `{sub} [ACCOUNT] [--collection NAME | --source NAME]`)"
        )
    account = positional[0] if positional else None
    if option is None:
        return WatchScope(account)
    if option[0] == "--collection":
        return WatchScope(account, collection=option[1])
    return WatchScope(account, source=option[1])


def _channel_option(words: list[str]) -> tuple[list[str], str | None]:
    """`--channel CHANNEL` (or `--channel=CHANNEL`) taken out of `words`: the channel's id, from a
    `<#C123|name>` link or the bare id (`#name` alone cannot be told apart from another channel's name)."""
    rest: list[str] = []
    channel: str | None = None
    i = 0
    while i < len(words):
        word = words[i]
        name, eq, inline = word.partition("=")
        if name != _CHANNEL_OPTION:
            rest.append(word)
            i += 1
            continue
        if channel is not None:
            raise UsageError("`--channel` given twice")
        if eq:
            value, i = inline, i + 1
        elif i + 1 < len(words) and not words[i + 1].startswith("--"):
            value, i = words[i + 1], i + 2
        else:
            value, i = "", i + 1
        channel = channel_id(value)
    return rest, channel


def channel_id(value: str) -> str:
    """A channel's id from what was typed: `<#C123|name>`, `<#C123>` or `C123`; UsageError otherwise."""
    text = value.strip()
    link = _CHANNEL_LINK.match(text)
    candidate = (link.group(1) if link else text).upper()
    if not _CHANNEL_ID.match(candidate):
        shown = f" `{_clip(text)}`" if text else ""
        raise UsageError(
            f"`--channel` needs a channel's id{shown and ', not' + shown} (the channel's details show it, "
            "e.g. C0123ABCD; `watches --all` lists every watching channel with its id)"
        )
    return candidate


def split_words(text: str) -> list[str]:
    """Shell-like words of Slack's text: entities decoded, smart quotes straightened, quotes honoured."""
    plain = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").translate(_SMART_QUOTES)
    try:
        words = shlex.split(plain)
    except ValueError as error:  # "No closing quotation"
        raise UsageError(f"cannot read the text: {str(error).lower()}") from None
    for word in words:
        if not word.strip():
            raise UsageError('an empty name ("") is not a name')
        if len(word) > MAX_WORD:
            raise UsageError(f"`{_clip(word)}` is longer than {MAX_WORD} characters")
        if any(ch in word for ch in "\r\n\x00"):
            raise UsageError("a name must be on one line")
    return words


def _no_options(words: list[str], sub: str) -> None:
    for word in words:
        if word.startswith("--"):
            raise UsageError(f"`{sub}` takes no option `{_clip(word)}`")


def _clip(word: str, limit: int = 40) -> str:
    return word if len(word) <= limit else word[: limit - 1] + "…"


def _quoted(words: list[str]) -> str:
    return ", ".join(f"`{_clip(w)}`" for w in words)
