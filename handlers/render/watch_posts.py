"""What the watcher posts on its own: the parent of a failure or a storm, the storm's list, the reply of a
repeat failure, "recovered", and the edits of the parent over the life of its thread.

One thread per failing scan: the parent is posted once, when the scan starts failing; a repeat failure is
a short reply in its thread and an edit of the parent ("still failing since …, 4 runs"); the recovery is
a reply and an edit ("recovered …") that closes the thread. The parent's blocks carry fixed `block_id`s
(head, state, where, ack, actions) so an edit replaces only what changed, from the message as Slack has
it, and the metadata is sent back with every edit: its run ids are what the restart dedupe looks for.

Pure functions returning `{"text", "blocks"}` payloads built with slack-sdk's models (which check Slack's
limits); every name and error text from Purview is escaped. Mentions are only ever `<@U…>` of the user
Slack names in an interaction and `<!subteam^S…>` of a configured route, both checked against Slack's id
syntax here: nothing untrusted becomes a mention.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from checks.classify import classify_run, error_text
from checks.gateways.api import Json
from checks.model import Finding, Report
from checks.sections import DEFAULT_DOCS_URL, doc_url
from checks.times import parse_time
from handlers.render.changes import rerun_value
from handlers.render.escape import code, escape, truncate
from handlers.render.findings import thread_messages
from handlers.render.summary import (
    GUIDE_ACTION_ID,
    OPEN_PURVIEW_ACTION_ID,
    Message,
    fallback,
    fix_hint,
    purview_url,
)
from handlers.render.texts import failure_message
from handlers.render.times import utc_text
from handlers.render.what_changed import trigger_texts
from handlers.watch.model import Failure

FAILURE_EVENT = "purview_scan_failure"
RECHECK_ACTION_ID = "purview_alert_recheck"
ACK_ACTION_ID = "purview_alert_ack"
ERROR_LIMIT = 300  # characters of an unclassified error in a parent
PARENT_LIMIT = 2900
MAX_METADATA_RUNS = 50  # run ids a parent's metadata keeps (the newest: a restart looks for new ones)
MAX_METADATA_SCANS = 100

NOTE, HEAD, TRIGGER, STATE, WHERE = "pvb_note", "pvb_head", "pvb_trigger", "pvb_state", "pvb_where"
ACK, ACTIONS = "pvb_ack", "pvb_actions"
_ORDER = (NOTE, HEAD, TRIGGER, STATE, WHERE, ACK, ACTIONS)
FAIL_MARK = "🔴 *FAIL* · "
RECOVERED_MARK = "✅ *RECOVERED* "
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")
_SUBTEAM_ID = re.compile(r"^S[A-Z0-9]{2,30}$")


def slack_date(when: datetime) -> str:
    """`<!date^…>`: each reader sees the time in their own zone; the fallback is UTC."""
    at = when.astimezone(UTC)
    return (
        f"<!date^{int(at.timestamp())}^{{date_short_pretty}} at {{time}}|{at.strftime('%Y-%m-%d %H:%M UTC')}>"
    )


def at_time(value: object, now: datetime) -> str:
    """`08:14 UTC` today, `2026-11-27 14:04 UTC` another day, `an unknown time` without one."""
    when = parse_time(value)
    return "an unknown time" if when is None else utc_text(when, now)


def _when(value: object) -> str:
    """A run's time as `<!date^…>`, `an unknown time` without one."""
    when = parse_time(value)
    return "an unknown time" if when is None else slack_date(when)


def user_mention(user: str | None) -> str:
    """`<@U123>` for a Slack user id as Slack sends it; anything else is not a mention."""
    return f"<@{user}>" if user and _USER_ID.match(user) else "someone"


def usergroup_mention(group: str | None) -> str:
    """`<!subteam^S123>` for a user group id of a route; "" for anything else."""
    return f"<!subteam^{group}>" if group and _SUBTEAM_ID.match(group) else ""


def is_usergroup_id(value: str) -> bool:
    return bool(_SUBTEAM_ID.match(value))


def error_summary(run: Json) -> str:
    """The run's error, classified (`Purview lacks data access (`AuthorizationPermissionMismatch`)`), or
    its first line when no rule knows it; escaped."""
    found = classify_run(run)
    if found is not None:
        return f"{escape(found.reason)} ({code(found.matched)})"
    text = error_text(run)
    if not text:
        return f"status {code(str(run.get('status') or 'unknown'))}, no error message"
    return truncate(escape(text.splitlines()[0]), ERROR_LIMIT)


# metadata ------------------------------------------------------------------------------------------


def _epoch(value: object) -> int | None:
    when = value if isinstance(value, datetime) else parse_time(value)
    return int(when.timestamp()) if when is not None else None


def failure_metadata(
    account: str, run_ids: Sequence[str], failures: Sequence[Failure] = ()
) -> dict[str, Any]:
    """The parent's metadata: the runs it reports (the restart dedupe), and for the thread's life the
    scans it is about, how many failed runs it covers, since when and the last one."""
    payload: dict[str, Any] = {"account": account, "runs": list(run_ids)[-MAX_METADATA_RUNS:]}
    if failures:
        scans = list(dict.fromkeys((f.source, f.scan) for f in failures))[:MAX_METADATA_SCANS]
        payload["sources"] = [source for source, _ in scans]
        payload["scans"] = [scan for _, scan in scans]
        payload["failures"] = len(set(run_ids))
        ends = [e for e in (_epoch(f.run.get("endTime")) for f in failures) if e is not None]
        if ends:
            payload["since"], payload["last"] = min(ends), max(ends)
    return {"event_type": FAILURE_EVENT, "event_payload": payload}


def payload_of(message: Json) -> dict[str, Any] | None:
    """The watcher's metadata payload of a message, None for any other message."""
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != FAILURE_EVENT:
        return None
    payload = metadata.get("event_payload")
    return payload if isinstance(payload, dict) else {}


def metadata_runs(message: Json) -> list[str]:
    """The run ids a message's watcher metadata names (none for any other message)."""
    runs = (payload_of(message) or {}).get("runs")
    return [str(r) for r in runs] if isinstance(runs, list) else []


@dataclass(frozen=True)
class PostScans:
    """What an automatic parent is about, from its metadata: the account and its (source, scan)s."""

    account: str
    scans: tuple[tuple[str, str], ...]


def post_scans(message: Json) -> PostScans | None:
    """The account and scans an automatic parent names; None when it is not one (or too old to say)."""
    payload = payload_of(message)
    if payload is None:
        return None
    account, sources, scans = payload.get("account"), payload.get("sources"), payload.get("scans")
    if not isinstance(account, str) or not account:
        return None
    if not isinstance(sources, list) or not isinstance(scans, list) or len(sources) != len(scans):
        return PostScans(account, ())
    pairs = tuple((str(s), str(c)) for s, c in zip(sources, scans, strict=True) if s and c)
    return PostScans(account, pairs)


# blocks --------------------------------------------------------------------------------------------


def _mrkdwn(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=truncate(text, PARENT_LIMIT) or " ")  # not verbatim: URLs link


def _section(block_id: str, text: str) -> dict[str, Any]:
    return SectionBlock(block_id=block_id, text=_mrkdwn(text)).to_dict()


def _context(block_id: str, text: str) -> dict[str, Any]:
    return ContextBlock(block_id=block_id, elements=[_mrkdwn(text)]).to_dict()


def links(account: str, report: Report | None, cause: Finding | None) -> list[tuple[str, str, str]]:
    """(text, action id, url) of the parent's link buttons: Open in Purview, the guide's section."""
    found = [("Open in Purview", OPEN_PURVIEW_ACTION_ID, purview_url(account))]
    base = (report.docs_base if report is not None else "") or DEFAULT_DOCS_URL
    found.append(("Guide", GUIDE_ACTION_ID, doc_url(base, cause.section) if cause is not None else base))
    return found


def _links_of(block: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """The link buttons of an actions block as posted (kept by every edit)."""
    found = []
    for element in (block or {}).get("elements") or []:
        if isinstance(element, dict) and element.get("url"):
            text = str((element.get("text") or {}).get("text") or "Open")
            found.append((text, str(element.get("action_id") or ""), str(element["url"])))
    return found


def _actions(*, acknowledge: bool, urls: Sequence[tuple[str, str, str]] = ()) -> dict[str, Any]:
    buttons = [
        ButtonElement(text="Re-check", action_id=RECHECK_ACTION_ID, value="parent", style="primary"),
    ]
    if acknowledge:
        buttons.append(ButtonElement(text="Acknowledge", action_id=ACK_ACTION_ID, value="ack"))
    buttons += [ButtonElement(text=text, action_id=action, url=url) for text, action, url in urls]
    return ActionsBlock(block_id=ACTIONS, elements=buttons[:25]).to_dict()


def with_note(message: Message, note: str) -> Message:
    """A parent led by a note of the bot's (why it is posted in this channel); edits keep it."""
    block = _section(NOTE, note)
    return {"text": fallback(f"{note}\n{message['text']}"), "blocks": [block, *message["blocks"]]}


def _blocks(parts: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    return [block for key in _ORDER if (block := parts.get(key)) is not None]


_LEADING_MENTION = re.compile(r"^<!subteam\^S[A-Z0-9]{2,30}> ")


def _by_id(message: Json) -> dict[str, dict[str, Any] | None]:
    """The parent's own blocks by id, its head without the mention of a new failure (an edit is no
    longer news: nobody is called again)."""
    parts: dict[str, dict[str, Any] | None] = {
        str(b.get("block_id")): b
        for b in message.get("blocks") or []
        if isinstance(b, dict) and b.get("block_id") in _ORDER
    }
    head = _text_of(parts.get(HEAD))
    if _LEADING_MENTION.match(head):
        parts[HEAD] = _section(HEAD, _LEADING_MENTION.sub("", head, count=1))
    return parts


def _text_of(block: dict[str, Any] | None) -> str:
    if not block:
        return ""
    if block.get("type") == "section":
        return str((block.get("text") or {}).get("text") or "")
    return " ".join(str(e.get("text") or "") for e in block.get("elements") or [] if isinstance(e, dict))


def _message(parts: dict[str, dict[str, Any] | None], lead: str = "") -> Message:
    head, state = _text_of(parts.get(HEAD)), _text_of(parts.get(STATE))
    text = "\n".join(t for t in (lead + head, state) if t)
    return {"text": fallback(text), "blocks": _blocks(parts)}


def _where(failure: Failure) -> str:
    collection = f" · collection {code(failure.collection)}" if failure.collection else ""
    return f"Purview account {code(failure.account)}{collection}"


def _scan_of(failure: Failure) -> str:
    return f"Scan {code(failure.scan)} of {code(failure.source)}"


def _failure_head(failure: Failure, cause: Finding | None) -> str:
    lines = [
        f"{FAIL_MARK}{_scan_of(failure)} failed {_when(failure.run.get('endTime'))}: "
        f"{error_summary(failure.run)}"
    ]
    if cause is not None:
        lines.append(f"*Cause:* {escape(cause.title)}")
        lines.append(f"*Fix:* {fix_hint(cause)}")
    elif failure.diagnosis_error:
        lines.append(f"The diagnosis could not finish: {truncate(escape(failure.diagnosis_error), 300)}")
    return "\n".join(lines)


def failure_parent(
    failure: Failure, cause: Finding | None, now: datetime, *, mention: str | None = None
) -> Message:
    """A new failure: "FAIL · Scan weekly of sales-adls failed <date>: Purview lacks data access (…)", the
    cause, where, and the Re-check and Acknowledge buttons; `mention` (a route's user group) leads."""
    lead = f"{usergroup_mention(mention)} " if usergroup_mention(mention) else ""
    run = f" · run {code(str(failure.run.get('id') or '?'))}"
    triggers = trigger_texts(failure.report, of=cause) if failure.report is not None and cause else []
    parts: dict[str, dict[str, Any] | None] = {
        HEAD: _section(HEAD, lead + _failure_head(failure, cause)),
        TRIGGER: _section(TRIGGER, "\n".join(triggers)) if triggers else None,
        STATE: _context(STATE, "🆕 First failure: a repeat goes into this thread"),
        WHERE: _context(WHERE, f"{_where(failure)}{run} · the diagnosis is in the thread"),
        ACTIONS: _actions(acknowledge=True, urls=links(failure.account, failure.report, cause)),
    }
    return _message(parts)


def storm_parent(
    failures: Sequence[Failure], cause: Finding, now: datetime, *, mention: str | None = None
) -> Message:
    """ "FAIL · 12 scans failed: Purview's managed identity … has Get but not List on secrets …"."""
    lead = f"{usergroup_mention(mention)} " if usergroup_mention(mention) else ""
    first = failures[0]
    accounts = sorted({f.account for f in failures})
    where = ", ".join(code(a) for a in accounts)
    detail = (
        f"Purview account{'s' if len(accounts) > 1 else ''} {where} · "
        f"the affected scans and the diagnosis of {_scan_of(first).lower()} are in the thread"
    )
    parts: dict[str, dict[str, Any] | None] = {
        HEAD: _section(
            HEAD,
            f"{lead}{FAIL_MARK}{len(failures)} scans failed: {escape(cause.title)}\n*Fix:* {fix_hint(cause)}",
        ),
        STATE: _context(STATE, f"🆕 First failure of {len(failures)} scans: repeats go into this thread"),
        WHERE: _context(WHERE, detail),
        ACTIONS: _actions(acknowledge=True, urls=links(first.account, first.report, cause)),
    }
    return _message(parts)


def _is_storm(payload: dict[str, Any]) -> bool:
    scans = payload.get("scans")
    return isinstance(scans, list) and len(scans) > 1


def _still_failing(payload: dict[str, Any]) -> str:
    count = int(payload.get("failures") or len(payload.get("runs") or []) or 1)
    since, last = payload.get("since"), payload.get("last")
    since_text = f" since {slack_date(datetime.fromtimestamp(since, UTC))}" if isinstance(since, int) else ""
    last_text = f" (last {slack_date(datetime.fromtimestamp(last, UTC))})" if isinstance(last, int) else ""
    runs = f"{count} failed run{'s' if count != 1 else ''}"
    if _is_storm(payload):
        scans = len(payload.get("scans") or [])
        up = len(payload.get("up") or [])
        recovered = f" · {up} of {scans} scans recovered" if up else ""
        return f"🔁 Still failing{since_text}, {runs} of {scans} scans{last_text}{recovered}"
    return f"🔁 Still failing{since_text}, {runs}{last_text}"


def repeat_edit(
    message: Json, failures: Sequence[Failure], cause: Finding | None, now: datetime
) -> tuple[Message, dict[str, Any]] | None:
    """The parent of an open thread after more failures of its scans: "still failing since …, N runs";
    a single scan's head shows its latest error and cause. Returns the message and its metadata (the
    new run ids added: a restart finds them); None when the message is not an automatic parent."""
    found = payload_of(message)
    if found is None:
        return None
    payload = dict(found)
    new_ids = [r for f in failures for r in f.run_ids]
    runs = [str(r) for r in payload.get("runs") or []]
    fresh = [r for r in dict.fromkeys(new_ids) if r not in runs]
    payload["runs"] = [*runs, *fresh][-MAX_METADATA_RUNS:]
    payload["failures"] = int(payload.get("failures") or len(runs)) + len(fresh)
    ends = [e for e in (_epoch(f.run.get("endTime")) for f in failures) if e is not None]
    if ends:
        payload["last"] = max([*ends, *([payload["last"]] if isinstance(payload.get("last"), int) else [])])
        if not isinstance(payload.get("since"), int):
            payload["since"] = min(ends)
    if _is_storm(payload):
        up = [i for i in payload.get("up") or [] if isinstance(i, int)]
        failed = {(f.source.lower(), f.scan.lower()) for f in failures}
        scans = list(zip(payload.get("sources") or [], payload.get("scans") or [], strict=False))
        payload["up"] = [
            i for i in up if i < len(scans) and (scans[i][0].lower(), scans[i][1].lower()) not in failed
        ]
    parts = _by_id(message)
    if not _is_storm(payload) and failures:
        ack = parts.get(ACK)
        parts[HEAD] = _section(HEAD, _failure_head(failures[-1], cause))
        parts[ACK] = ack
    parts[STATE] = _context(STATE, _still_failing(payload))
    return _message(parts), {"event_type": FAILURE_EVENT, "event_payload": payload}


def recovered_edit(
    message: Json, source: str, scan: str, run: Json, now: datetime
) -> tuple[Message, dict[str, Any]] | None:
    """The parent once a scan of it succeeded again: "RECOVERED <date>" (a storm: once all its scans
    did; until then "3 of 12 scans recovered"). None when the message is not an automatic parent."""
    payload = payload_of(message)
    if payload is None:
        return None
    payload = dict(payload)
    parts = _by_id(message)
    when = _when(run.get("endTime"))
    if _is_storm(payload):
        pairs = [
            (str(s).lower(), str(c).lower())
            for s, c in zip(payload.get("sources") or [], payload.get("scans") or [], strict=False)
        ]
        up = {i for i in payload.get("up") or [] if isinstance(i, int)}
        up |= {i for i, pair in enumerate(pairs) if pair == (source.lower(), scan.lower())}
        payload["up"] = sorted(up)
        if len(up) < len(pairs):
            parts[STATE] = _context(STATE, _still_failing(payload))
            return _message(parts), {"event_type": FAILURE_EVENT, "event_payload": payload}
    payload["recovered"] = _epoch(run.get("endTime")) or int(now.timestamp())
    head = _text_of(parts.get(HEAD))
    head = head.split(FAIL_MARK, 1)[-1]
    parts[HEAD] = _section(HEAD, f"{RECOVERED_MARK}{when} · {head}")
    count = int(payload.get("failures") or len(payload.get("runs") or []) or 1)
    since = payload.get("since")
    since_text = (
        f"failing since {slack_date(datetime.fromtimestamp(since, UTC))}, " if isinstance(since, int) else ""
    )
    parts[STATE] = _context(
        STATE,
        f"✅ Recovered {when} after {since_text}{count} failed run{'s' if count != 1 else ''}: "
        "this thread is closed, a new failure opens a new one",
    )
    parts[ACTIONS] = _actions(acknowledge=False, urls=_links_of(parts.get(ACTIONS)))
    return _message(parts), {"event_type": FAILURE_EVENT, "event_payload": payload}


def ack_edit(message: Json, user: str | None, now: datetime) -> tuple[Message, dict[str, Any]] | None:
    """The parent with "@dana is on it"; the Acknowledge button goes. None when not an automatic parent."""
    payload = payload_of(message)
    if payload is None:
        return None
    parts = _by_id(message)
    parts[ACK] = _context(ACK, f"👀 {user_mention(user)} is on it ({slack_date(now)})")
    recovered = "recovered" in payload
    if not recovered:
        parts[ACTIONS] = _actions(acknowledge=False, urls=_links_of(parts.get(ACTIONS)))
    metadata = message.get("metadata") if isinstance(message.get("metadata"), dict) else None
    return _message(parts), dict(metadata or {"event_type": FAILURE_EVENT, "event_payload": payload})


# thread replies ------------------------------------------------------------------------------------


def storm_list(failures: Sequence[Failure], now: datetime) -> list[Message]:
    """The affected scans, one line each, packed into as few messages as Slack's limits allow; the error
    is said once when every run has the same one."""
    errors = {error_summary(f.run) for f in failures}
    shared = errors.pop() if len(errors) == 1 else None
    lines = []
    for f in failures:
        collection = f" (collection {code(f.collection)})" if f.collection else ""
        error = "" if shared else f": {error_summary(f.run)}"
        lines.append(f"• {_scan_of(f)}{collection} failed {_when(f.run.get('endTime'))}{error}")
    head = [f"*Affected scans ({len(failures)})*"] + ([f"All with: {shared}"] if shared else [])
    messages: list[Message] = []
    page = head
    for line in lines:
        if len("\n".join([*page, line])) > PARENT_LIMIT and len(page) > len(head):
            messages.append(_plain(page))
            page = head = ["*Affected scans (continued)*"]
        page = [*page, line]
    messages.append(_plain(page))
    return messages


def _plain(lines: list[str]) -> Message:
    text = truncate("\n".join(lines), PARENT_LIMIT)
    return {"text": fallback(text), "blocks": [SectionBlock(text=_mrkdwn(text)).to_dict()]}


def report_thread(failure: Failure) -> list[Message]:
    """The diagnosis as the slash command shows it, with the Re-run button; or why there is none."""
    if failure.report is None:
        return [failure_message(failure.source, failure.diagnosis_error or "no diagnosis")]
    report = failure.report
    return thread_messages(report, rerun_value=rerun_value(report, scan=failure.scan))


def repeat_message(failure: Failure, cause: Finding | None, now: datetime) -> Message:
    """The short reply of a repeat failure in its scan's open thread."""
    runs = ", ".join(code(r) for r in failure.run_ids[:3])
    lines = [
        f"🔁 {_scan_of(failure)} failed again {_when(failure.run.get('endTime'))}: "
        f"{error_summary(failure.run)} (run {runs})"
    ]
    if cause is not None:
        lines.append(f"*Cause:* {escape(cause.title)}")
    elif failure.diagnosis_error:
        lines.append(f"The diagnosis could not finish: {truncate(escape(failure.diagnosis_error), 300)}")
    return _plain(lines)


def recovered_message(source: str, scan: str, run: Json, now: datetime) -> Message:
    """The reply in a failure's thread once the scan's newest run succeeded."""
    text = (
        f"✅ Scan {code(scan)} of {code(source)} recovered {_when(run.get('endTime'))} "
        f"(run {code(str(run.get('id') or '?'))} succeeded). This thread is closed: a new failure opens "
        "a new one."
    )
    return _plain([text])


def group_thread(failures: Sequence[Failure], cause: Finding | None, now: datetime) -> list[Message]:
    """What goes in a group's thread: the storm's list of scans (several failures with one cause), then
    the report of the first failure."""
    if len(failures) > 1 and cause is not None:
        return [*storm_list(failures, now), *report_thread(failures[0])]
    return report_thread(failures[0])


def button_value(value: object) -> dict[str, Any]:
    """A JSON button value as a dict ({} for anything else): untrusted input, read defensively."""
    try:
        parsed = json.loads(str(value))
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
