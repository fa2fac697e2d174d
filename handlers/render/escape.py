"""Untrusted text made safe for Slack: escaped, fenced, and cut only where no entity or link breaks.

Resource names, error messages and user input reach Slack messages. Slack parses `<…>` as links and
mentions (`<!channel>`, `<@U1>`, `<https://evil|click>`) and decodes `&amp;`, `&lt;`, `&gt;`; escaping
those three characters is all it takes to show such text literally.

mrkdwn has no escape for its formatting characters (`*bold*`, `_italic_`, `~strike~`, `` `code` ``, a
`>` quote at a line's start), so in untrusted prose they become look-alikes that Slack shows as plain
characters. Code spans and blocks render their content literally already: there `*`, `_` and `~` stay
as they are (a command stays copy-pasteable) and only backticks that could close the fence are replaced.
Bidirectional controls (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C), which would show text
reversed, are made visible everywhere (`[U+202E]`).

Text objects are not `verbatim`, so that URLs in Azure's error texts become links; Slack then also reads
bare `@channel`, `@here` or `@name` words as mentions, so an `@` that starts a word in untrusted prose
becomes a look-alike (FULLWIDTH COMMERCIAL AT). An `@` inside a word (`dana@contoso.com`) stays.
"""

from __future__ import annotations

import re

ELLIPSIS = "…"
# MODIFIER LETTER GRAVE ACCENT: looks like a backtick, never closes a Slack code span
_LOOKALIKE = "\u02cb"
# Look-alikes of mrkdwn's formatting characters, which Slack renders as plain characters:
# ASTERISK OPERATOR, MODIFIER LETTER LOW MACRON, TILDE OPERATOR, MODIFIER LETTER GRAVE ACCENT.
MRKDWN_LOOKALIKES = {"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": _LOOKALIKE}
_MRKDWN = str.maketrans(MRKDWN_LOOKALIKES)
# a `>` (escaped: `&gt;`) opening a line would make it a quote: SINGLE RIGHT-POINTING ANGLE QUOTATION MARK
_QUOTE = re.compile(r"^([ \t]*)&gt;", re.MULTILINE)
_QUOTE_LOOKALIKE = "\u203a"
BIDI_CONTROLS = frozenset(
    [*map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A)), "\u200e", "\u200f", "\u061c"]
)
_BIDI = str.maketrans({c: f"[U+{ord(c):04X}]" for c in BIDI_CONTROLS})
_FENCE_RUN = re.compile(r"`{3,}")
_QUOTED = re.compile(r"(`[^`\n]+`)")
_ENTITY_MAX = len("&amp;")
# an `@` that starts a word: with `verbatim` off Slack would read `@here`, `@channel`, `@dana` as mentions
_MENTION = re.compile(r"(?<![\w.+-])@(?=\w)")
_AT_LOOKALIKE = "\uff20"
# a URL in untrusted text (Slack links it, `verbatim` being off): kept as typed but for entities, so `_`
# or `~` in it still lead where the text says; trailing punctuation and formatting stay outside it
_URL = re.compile(r"(https?://[^\s<>|\"'`]*[^\s<>|\"'`.,;:!?)*_~])")


def escape(text: str) -> str:
    """Untrusted text for mrkdwn prose, shown exactly as it is: `&`, `<`, `>` as entities (nobody is
    pinged, no link forged), formatting characters as look-alikes, direction controls made visible."""
    parts = _URL.split(text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:  # a URL: only entities, so the link Slack makes of it goes where the text says
            out.append(_entities(part))
        else:
            out.append(_MENTION.sub(_AT_LOOKALIKE, _entities(part).translate(_MRKDWN)))
    return _QUOTE.sub(rf"\1{_QUOTE_LOOKALIKE}", "".join(out))


def escape_quoted(text: str) -> str:
    """A sentence the bot wrote with untrusted words quoted in backticks (a usage error: "unknown option
    `--x`"): each `…` pair on a line is shown as inline code (`code`), everything else is escaped."""
    parts = _QUOTED.split(text)
    return "".join(code(part[1:-1]) if i % 2 else escape(part) for i, part in enumerate(parts))


def escape_url(url: str) -> str:
    """A URL for `<url|label>` (configuration, still kept from breaking out of the link): entities, `|`
    percent-encoded, direction controls made visible; nothing else changes, so the link still works."""
    return _entities(url).replace("|", "%7C")


def _entities(text: str) -> str:
    """`&`, `<`, `>` as entities and bidirectional controls made visible: the escaping every context
    needs (inside code spans and links too)."""
    return text.translate(_BIDI).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(text: str) -> str:
    """Inline code (`` `text` ``): one line, no backtick that could end the span early."""
    flat = " ".join(text.split()) or " "
    return f"`{_entities(flat).replace('`', _LOOKALIKE)}`"


def code_block(text: str) -> str:
    """A fenced block (```…```) whose content cannot close the fence: runs of three or more backticks
    become look-alikes, single ones (shell substitution) stay so the lines remain copy-pasteable."""
    return _fence(_defang(_entities(text)))


def code_blocks(text: str, limit: int) -> list[str]:
    """`text` as fenced blocks of at most `limit` characters each, split between lines where possible."""
    return [_fence(chunk) for chunk in split_text(_defang(_entities(text)), limit - len(_fence("")))]


def _defang(escaped: str) -> str:
    return _FENCE_RUN.sub(lambda m: _LOOKALIKE * len(m.group()), escaped)


def _fence(body: str) -> str:
    """The fences sit on their own lines, so a backtick at the body's edge cannot join them."""
    return f"```\n{body}\n```"


def safe_cut(text: str, index: int) -> int:
    """The largest cut position ≤ `index` that is not inside an entity (`&amp;`) or a `<…>` link.

    In escaped text every `&` starts an entity and every `<` starts a link this bot wrote itself.
    """
    index = max(0, min(index, len(text)))
    amp = text.rfind("&", max(0, index - _ENTITY_MAX + 1), index)
    if amp != -1 and ";" not in text[amp:index]:
        index = amp
    lt = text.rfind("<", 0, index)
    if lt != -1 and ">" not in text[lt:index]:
        index = lt
    return index


def truncate(text: str, limit: int, marker: str = ELLIPSIS) -> str:
    """`text` (already escaped) in at most `limit` characters, ending in `marker` when shortened."""
    if len(text) <= limit:
        return text
    return text[: safe_cut(text, limit - len(marker))] + marker


def split_text(text: str, limit: int) -> list[str]:
    """Escaped `text` in chunks of at most `limit` characters, preferring line then word boundaries,
    never splitting an entity or a link; chunks are stripped of the newline they were split at."""
    if limit < 2 * _ENTITY_MAX:
        raise ValueError(f"limit {limit} too small to split text safely")
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = _boundary(rest, limit)
        chunks.append(rest[:cut].rstrip("\n"))
        rest = rest[cut:].lstrip("\n")
    if rest or not chunks:
        chunks.append(rest)
    return [c for c in chunks if c] or [""]


def _boundary(text: str, limit: int) -> int:
    """Where to end the next chunk: the last newline or space in its second half, else a hard cut."""
    for sep in ("\n", " "):
        at = text.rfind(sep, limit // 2, limit)
        if at > 0:
            return safe_cut(text, at + 1) or limit
    return safe_cut(text, limit) or limit
