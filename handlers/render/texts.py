"""Short answers shared by the Slack listeners and the watcher's posts: a name not found, a diagnosis
that could not finish, a report a restart cut short. Every name and reason is escaped here."""

from __future__ import annotations

import json

from checks.accounts import AccountRef
from checks.diagnose import NameNotFoundError
from handlers.render.changes import VALUE_LIMIT as RERUN_VALUE_LIMIT
from handlers.render.changes import VERSION as RERUN_VERSION
from handlers.render.changes import RerunRequest
from handlers.render.escape import code, escape, truncate
from handlers.render.findings import rerun_block
from handlers.render.summary import Message, section

REASON_LIMIT = 500
INTERRUPTED = "interrupted by a restart — run the command again"


def not_found_text(error: NameNotFoundError) -> str:
    hint = f" Did you mean: {', '.join(code(s) for s in error.suggestions)}?" if error.suggestions else ""
    return f"No {escape(error.what)} named {code(error.name)}.{hint}"


def failure_text(source: str, reason: str) -> str:
    return f"⚠️ {code(source)}: could not finish: {truncate(escape(reason), REASON_LIMIT)}"


def failure_message(source: str, reason: str) -> Message:
    text = failure_text(source, reason)
    return {"text": text, "blocks": [section(text)]}


def interrupted_message(
    source: str, account: str, scan: str | None, previous: RerunRequest | None = None
) -> Message:
    """A "Checking…" parent whose diagnosis a shutdown cut short: it says so, with the Re-check button
    (the clicked button's problems for a Re-run, else none known: compared as partial), or the command
    to type when the names are too long for a button's value."""
    keys, partial = (previous.previous, previous.truncated) if previous is not None else ([], True)
    value = json.dumps(
        {"v": RERUN_VERSION, "s": source, "a": account, "c": scan, "p": keys} | ({"t": 1} if partial else {}),
        separators=(",", ":"),
        ensure_ascii=False,
    )
    text = failure_text(source, INTERRUPTED)
    if len(value) > RERUN_VALUE_LIMIT:
        retry = f"/purview-check {source} {AccountRef(account).name}"
        text += f" ({code(retry)})"
        return {"text": text, "blocks": [section(text)]}
    return {"text": text, "blocks": [section(text), rerun_block(value)]}
