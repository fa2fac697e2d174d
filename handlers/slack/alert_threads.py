"""Re-checks in the thread of an automatic post (the watcher's failure or storm parent).

An automatic parent is the watcher's: its metadata names the runs it reports (the restart dedupe looks
for them) and the scans it is about, and the watcher edits it over the thread's life ("still failing",
"recovered"). So a Re-check asked there — the parent's Re-check button, the Re-run button of the report
in its thread, or `@purview-bot recheck` — never turns the parent into a report: it re-checks the post's
sources (every one of a storm's) and answers in the thread. One source: a "Checking…" reply that becomes
its summary, the findings after it (reporting.publish). Several (a storm): one summary reply per source,
so the thread stays readable; each source's Re-check button is in its summary, and re-checks that source
only (`source_of`); a Re-run button of another source's report in the thread is an ordinary Re-run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from checks.diagnose import NameNotFoundError
from handlers.diagnosis import AccountError, resolve_account
from handlers.render.changes import RerunRequest
from handlers.render.escape import code
from handlers.render.summary import section
from handlers.render.texts import INTERRUPTED, failure_text, not_found_text
from handlers.render.watch_posts import PostScans, post_scans, user_mention
from handlers.slack.deps import Deps
from handlers.slack.last_report import remember
from handlers.slack.posting import Respond, post_message, report_metadata, update_message
from handlers.slack.reporting import Request, diagnose, post_progress, publish, report_messages
from handlers.slack.watch_publisher import read_message

log = logging.getLogger(__name__)

MAX_SOURCES = 25  # a storm's sources re-checked per click; the rest are named with their command


@dataclass(frozen=True)
class AlertThread:
    """An automatic post's thread: where it is and the (source, scan)s it is about."""

    channel: str
    ts: str
    account: str
    scans: tuple[tuple[str, str], ...]


async def alert_thread(deps: Deps, channel: str, thread_ts: str) -> AlertThread | None:
    """The automatic post whose thread `thread_ts` is, or None (another parent, or unreadable). Its
    scans come from the parent's metadata, else (a post of an older version) from the store's record
    of the runs posted under it."""
    try:
        message = await read_message(deps.client, channel, thread_ts)
    except Exception as error:
        log.warning("the parent %s in %s could not be read: %s", thread_ts, channel, error)
        return None
    found: PostScans | None = post_scans(message) if message is not None else None
    if found is None:
        return None
    scans = found.scans
    if not scans and deps.store is not None:
        try:
            posts = await deps.store.thread_posts(found.account, channel, thread_ts)
        except Exception as error:
            log.warning("the scans of the automatic post %s are unknown: %s", thread_ts, error)
            posts = []
        scans = tuple(dict.fromkeys((p.ref.source, p.ref.scan) for p in posts))
    return AlertThread(channel, thread_ts, found.account, scans)


async def recheck_alert(
    deps: Deps,
    thread: AlertThread,
    user: str | None,
    *,
    previous: RerunRequest | None = None,
    respond: Respond | None = None,
    on_release: Callable[[], None] | None = None,
) -> None:
    """Re-check the post's sources and answer in its thread; the parent is left alone. `previous`: the
    clicked Re-run button's request (its source's report compares with it). The thread hears at once
    that the re-check started; the diagnoses then wait for a slot (`on_release`: when it is given back)."""
    try:
        account = resolve_account(thread.account, deps.service.accounts)
    except AccountError as error:
        await _reply(deps, thread, str(error))
        return
    scans = thread.scans
    if not scans:
        await _reply(
            deps, thread, "I cannot tell which scans this post is about; use `/purview-check SOURCE`."
        )
        return
    if len(scans) == 1:
        source, scan = scans[0]
        request = Request(source, account, scan, user)
        same = previous is not None and previous.source.lower() == source.lower()
        progress = await post_progress(
            deps, request, channel=thread.channel, thread_ts=thread.ts, rechecking=True
        )
        try:
            await publish(
                deps,
                request,
                channel=thread.channel,
                summary_ts=progress,
                thread_ts=thread.ts,
                previous=previous if same else None,
                respond=respond,
                on_release=on_release,
            )
        except NameNotFoundError as error:  # deleted or renamed: the "Re-checking…" reply says so
            text = not_found_text(error)
            await update_message(
                deps.client, channel=thread.channel, ts=progress, text=text, blocks=[section(text)]
            )
        return
    await _recheck_storm(deps, thread, account, user, on_release)


def source_of(thread: AlertThread, rerun: RerunRequest) -> AlertThread | None:
    """The thread narrowed to the one scan a Re-run button names (a storm source's summary has its own
    button), or None when the button is about a source the post is not (another report in the thread)."""
    for source, scan in thread.scans:
        if source.lower() != rerun.source.lower():
            continue
        if rerun.scan is None or rerun.scan.lower() == scan.lower():
            return replace(thread, scans=((source, scan),))
    return None


async def _recheck_storm(
    deps: Deps, thread: AlertThread, account: str, user: str | None, on_release: Callable[[], None] | None
) -> None:
    """One summary reply per source of the storm, each as soon as its diagnosis is done; a shutdown
    before the last one says so in the thread."""
    scans = thread.scans[:MAX_SOURCES]
    await _reply(
        deps,
        thread,
        f"Re-checking the {len(thread.scans)} scans of this post… requested by {user_mention(user)}",
    )
    interrupted = deps.background.on_interrupt(lambda: _reply(deps, thread, f"⚠️ Re-check {INTERRUPTED}"))
    async with deps.runner.slots.turn(on_release=on_release):
        await _recheck_each(deps, thread, account, user, scans)
    interrupted.cancel()
    rest = thread.scans[MAX_SOURCES:]
    if rest:
        names = ", ".join(code(f"/purview-check {s} --scan {c}") for s, c in rest[:10])
        await _reply(deps, thread, f"{len(rest)} more not re-checked here: {names}")


async def _recheck_each(
    deps: Deps, thread: AlertThread, account: str, user: str | None, scans: tuple[tuple[str, str], ...]
) -> None:
    for source, scan in scans:
        request = Request(source, account, scan, user)
        try:
            report = await diagnose(deps, request)
        except NameNotFoundError as error:
            await _reply(deps, thread, not_found_text(error))
            continue
        except Exception as error:
            log.exception("re-check of %s in the storm %s failed", source, thread.ts)
            await _reply(deps, thread, failure_text(source, deps.runner.reason(error)))
            continue
        summary, _ = report_messages(report, request)
        await post_message(
            deps.client,
            channel=thread.channel,
            thread_ts=thread.ts,
            text=summary["text"],
            blocks=summary["blocks"],
            metadata=report_metadata(source, account, scan),
        )
        await remember(deps, report)


async def _reply(deps: Deps, thread: AlertThread, text: str) -> None:
    """A short reply in the post's thread; `text` must already be escaped."""
    await post_message(deps.client, channel=thread.channel, thread_ts=thread.ts, text=text)


__all__ = ["AlertThread", "alert_thread", "recheck_alert", "source_of"]
