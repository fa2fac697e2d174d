"""Escaping, fencing and cutting of untrusted text for Slack."""

from __future__ import annotations

import random
import re

import pytest

from handlers.render.escape import code, code_block, code_blocks, escape, safe_cut, split_text, truncate

ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("<@U1>", "&lt;@U1&gt;"),
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
