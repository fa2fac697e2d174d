"""Untrusted text made safe for Slack: escaped, fenced, and cut only where no entity or link breaks.

Resource names, error messages and user input reach Slack messages. Slack parses `<…>` as links and
mentions (`<!channel>`, `<@U1>`, `<https://evil|click>`) and decodes `&amp;`, `&lt;`, `&gt;`; escaping
those three characters is all it takes to show such text literally. Code spans are fenced by backticks,
so backticks inside untrusted code are replaced by a look-alike that cannot close the fence.
"""

from __future__ import annotations

import re

ELLIPSIS = "…"
# MODIFIER LETTER GRAVE ACCENT: looks like a backtick, never closes a Slack code span
_LOOKALIKE = "\u02cb"
_FENCE_RUN = re.compile(r"`{3,}")
_ENTITY_MAX = len("&amp;")


def escape(text: str) -> str:
    """`&`, `<`, `>` as entities: Slack then shows the text as it is and pings nobody."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(text: str) -> str:
    """Inline code (`` `text` ``): one line, no backtick that could end the span early."""
    flat = " ".join(text.split()) or " "
    return f"`{escape(flat).replace('`', _LOOKALIKE)}`"


def code_block(text: str) -> str:
    """A fenced block (```…```) whose content cannot close the fence: runs of three or more backticks
    become look-alikes, single ones (shell substitution) stay so the lines remain copy-pasteable."""
    return _fence(_defang(escape(text)))


def code_blocks(text: str, limit: int) -> list[str]:
    """`text` as fenced blocks of at most `limit` characters each, split between lines where possible."""
    return [_fence(chunk) for chunk in split_text(_defang(escape(text)), limit - len(_fence("")))]


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
