"""Short answers shared by the Slack listeners and the watcher's posts: a name not found, a diagnosis
that could not finish. Every name and reason is escaped here."""

from __future__ import annotations

from checks.diagnose import NameNotFoundError
from handlers.render.escape import code, escape, truncate
from handlers.render.summary import Message

REASON_LIMIT = 500


def not_found_text(error: NameNotFoundError) -> str:
    hint = f" Did you mean: {', '.join(code(s) for s in error.suggestions)}?" if error.suggestions else ""
    return f"No {escape(error.what)} named {code(error.name)}.{hint}"


def failure_text(source: str, reason: str) -> str:
    return f"⚠️ {code(source)}: could not finish: {truncate(escape(reason), REASON_LIMIT)}"


def failure_message(source: str, reason: str) -> Message:
    text = failure_text(source, reason)
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
