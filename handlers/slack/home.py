"""App Home: per configured account, every source the bot watches, with its last status, since when, and
a Re-check button.

Built from the store only (the watcher's scan cursors, the last report of each source, the mutes): opening
the tab makes no Azure call, so it is instant and costs nothing however often it is opened. The Re-check
button diagnoses that source (in a diagnosis slot, like any check), saves the report as the source's last
one, and publishes the tab again for the person who clicked.

Status words sit beside every icon (a screen reader reads the word). Names are escaped; times are
`<!date^…>`, so each reader sees their own time zone.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.models.blocks import (
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from checks.accounts import AccountRef
from checks.diagnose import NameNotFoundError
from checks.times import parse_time
from handlers.diagnosis import AccountError, resolve_account
from handlers.ports import Mute, ScanCursor, StoredReport
from handlers.render.escape import code, escape, truncate
from handlers.render.watch_posts import slack_date
from handlers.slack.admission import Ticket
from handlers.slack.deps import Deps
from handlers.slack.gate import ack_admitted, admit, ours
from handlers.slack.last_report import remember
from handlers.slack.reporting import Request, diagnose

log = logging.getLogger(__name__)

HOME_RECHECK_ACTION_ID = "purview_home_recheck"
MAX_BLOCKS = 100  # a Home tab's limit
STORE_SECONDS = 5.0
COMMAND = "/purview-check"

# the report's status → what the tab says (word beside the icon)
VERDICTS = {
    "fail": "🔴 FAIL",
    "warn": "🟠 WARN",
    "unknown": "⚪ COULD NOT CHECK",
    "pass": "🟢 PASS",
    "skipped": "➖ N/A",
}


@dataclass
class SourceState:
    """What the store knows of one source: its scans' cursors, its last report, its mute."""

    name: str
    cursors: list[ScanCursor] = field(default_factory=list)
    report: StoredReport | None = None
    mute: Mute | None = None


@dataclass(frozen=True)
class AccountState:
    account: str
    sources: list[SourceState]
    problem: str | None = None  # why the store could not say


def gather_sources(
    cursors: Iterable[ScanCursor], reports: Iterable[StoredReport], mutes: Iterable[Mute]
) -> list[SourceState]:
    """One entry per source the watcher or a report has seen, by name (case-insensitive), sorted."""
    by_name: dict[str, SourceState] = {}

    def of(name: str) -> SourceState:
        return by_name.setdefault(name.lower(), SourceState(name))

    for cursor in cursors:
        of(cursor.source).cursors.append(cursor)
    for report in reports:
        of(report.source).report = report
    for mute in mutes:
        if mute.source.lower() in by_name:
            by_name[mute.source.lower()].mute = mute
    return sorted(by_name.values(), key=lambda s: s.name.lower())


def _since(when: datetime | None) -> str:
    return slack_date(when) if when is not None else "an unknown time"


def source_line(state: SourceState, now: datetime, *, pending: bool = False) -> str:
    """`*sales-adls* · 🔴 FAIL since <date> (scan weekly) · checked <date>: ▲ …`, escaped."""
    parts = [f"*{escape(state.name)}*"]
    failing = [c for c in state.cursors if c.failing_since is not None]
    if failing:
        first = min(failing, key=lambda c: c.failing_since or now)
        scans = ", ".join(code(c.scan) for c in failing[:3])
        parts.append(f"🔴 FAILING since {_since(first.failing_since)} (scan {scans})")
    elif state.cursors:
        newest = max(state.cursors, key=lambda c: c.last_end_time or datetime.min.replace(tzinfo=UTC))
        if newest.last_end_time is not None:
            status = escape(newest.last_status or "unknown").lower()
            parts.append(f"🟢 OK · last run {status} {_since(newest.last_end_time)}")
    report = state.report
    if report is not None:
        verdict = VERDICTS.get(str(report.report.get("status") or ""), "⚪ UNKNOWN")
        checked = parse_time(report.report.get("startedAt")) or report.updated_at
        parts.append(f"last check {verdict} {_since(checked)}")
    elif not state.cursors:
        parts.append("not checked yet")
    mute = state.mute
    if mute is not None and mute.until > now:
        parts.append(f"🔕 muted until {slack_date(mute.until)}")
    if pending:
        parts.append("⏳ re-checking…")
    return truncate(" · ".join(parts), 2900)


def recheck_value(account: str, source: str) -> str:
    return json.dumps({"a": account, "s": source}, separators=(",", ":"), ensure_ascii=False)


def home_view(
    accounts: list[AccountState], now: datetime, *, pending: frozenset[tuple[str, str]] = frozenset()
) -> dict[str, Any]:
    """The Home tab: a header, per account its sources (a section with a Re-check button each), within
    Slack's 100 blocks (the rest counted, with the command that lists them)."""
    blocks: list[Any] = [
        HeaderBlock(text=PlainTextObject(text="Purview scans")),
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=(
                        f"As of {slack_date(now)}, from the bot's last sweep and reports (no Azure call). "
                        f"`{COMMAND} SOURCE` posts a full report; `{COMMAND} mute SOURCE 4h` holds back its "
                        "automatic posts."
                    ),
                    verbatim=True,
                )
            ]
        ),
    ]
    budget = MAX_BLOCKS - 1  # room kept for the closing "…and N more" note
    left_out = hidden = 0
    for state in accounts:
        name = AccountRef(state.account).name
        if len(blocks) + 3 > budget:  # divider, name, and at least one line
            left_out += len(state.sources)
            hidden += 1
            continue
        blocks.append(DividerBlock())
        blocks.append(SectionBlock(text=MarkdownTextObject(text=f"*Account {code(name)}*", verbatim=True)))
        if state.problem:
            blocks.append(_context(f"⚠️ {escape(state.problem)}"))
            continue
        if not state.sources:
            blocks.append(_context("No source seen yet: the watcher lists them at its next sweep."))
            continue
        for source in state.sources:
            if len(blocks) + 1 > budget:
                left_out += 1
                continue
            line = source_line(source, now, pending=(name.lower(), source.name.lower()) in pending)
            button = ButtonElement(
                text="Re-check",
                action_id=HOME_RECHECK_ACTION_ID,
                value=recheck_value(name, source.name),
            )
            blocks.append(SectionBlock(text=MarkdownTextObject(text=line, verbatim=True), accessory=button))
    if left_out or hidden:
        more = [f"{left_out} more sources"] if left_out else []
        more += [f"{hidden} more account{'s' if hidden != 1 else ''} not shown"] if hidden else []
        blocks.append(_context(f"…and {' and '.join(more)}: `{COMMAND} list` names them all."))
    view = View(type="home", blocks=blocks)
    view.validate_json()
    return view.to_dict()


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text, verbatim=True)])


class AppHome:
    """`app_home_opened` (the Home tab) and its Re-check buttons; acked at once, worked in the background."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def handle_opened(self, ack: AsyncAck, body: dict[str, Any], event: dict[str, Any]) -> None:
        await ack()
        user = event.get("user")
        if event.get("tab") not in (None, "home") or not user:
            return
        self._deps.metrics.command("home")
        self._deps.background.spawn(self._opened(body, str(user)), "app-home")

    async def handle_recheck(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        self._deps.metrics.command("home-recheck")
        admitted = admit(self._deps, (body.get("user") or {}).get("id"), None)
        await ack_admitted(ack, admitted)
        if isinstance(admitted, Ticket):  # turned away (busy): the tab stays as it is
            self._deps.background.spawn(self._recheck(body, action, admitted), "app-home-recheck")

    async def _opened(self, body: dict[str, Any], user: str) -> None:
        try:
            if await ours(self._deps, body):
                await self.publish(user)
        except Exception:
            log.exception("the Home tab of %s could not be published", user)

    async def publish(self, user: str, pending: frozenset[tuple[str, str]] = frozenset()) -> None:
        """The tab for `user`, from the store (views.publish); only the refusal for someone outside
        `PURVIEW_BOT_ALLOWED_USERGROUP`."""
        now = datetime.now(UTC)
        refusal = await self._deps.access.user_refusal(self._deps.client, user)
        if refusal is not None:
            view = View(type="home", blocks=[_context(escape(refusal))]).to_dict()
        else:
            accounts = [await self._account(account) for account in self._deps.service.accounts]
            view = home_view(accounts, now, pending=pending)
        await self._deps.client.views_publish(user_id=user, view=view)

    async def _account(self, account: str) -> AccountState:
        store = self._deps.store
        name = AccountRef(account).name
        if store is None:
            return AccountState(account, [], "The bot's database is not open: nothing to show yet.")
        try:
            async with asyncio.timeout(STORE_SECONDS):
                cursors = await store.cursors(name)
                reports = await store.last_reports(name)
                mutes = await store.mutes(name)
        except Exception as error:
            log.warning("the Home tab could not read the state of %s: %s", name, error)
            return AccountState(account, [], "The bot's database did not answer: try again in a minute.")
        return AccountState(account, gather_sources(cursors.values(), reports, mutes))

    async def _recheck(self, body: dict[str, Any], action: dict[str, Any], ticket: Ticket) -> None:
        """Diagnose the source of the clicked line, save its report, and publish the tab again."""
        try:
            await self._recheck_admitted(body, action, ticket)
        finally:
            ticket.release()

    async def _recheck_admitted(self, body: dict[str, Any], action: dict[str, Any], ticket: Ticket) -> None:
        deps = self._deps
        user = str((body.get("user") or {}).get("id") or "")
        try:
            if not user or not await ours(deps, body):
                return
            value = _value(action.get("value"))
            if value is None:
                return
            name, source = value
            if await deps.access.user_refusal(deps.client, user) is not None:
                return  # the tab says so already
            account = resolve_account(name, deps.service.accounts)
            await self.publish(user, frozenset({(name.lower(), source.lower())}))
            # a shutdown before the answer publishes the tab again, so it does not say "re-checking…"
            interrupted = deps.background.on_interrupt(lambda: self.publish(user))
            async with deps.runner.slots.turn(on_release=ticket.release):
                report = await diagnose(deps, Request(source, account, None, user))
            interrupted.cancel()
            await remember(deps, report)
        except (AccountError, NameNotFoundError) as error:
            log.info("Home tab Re-check refused: %s", error)
        except Exception:
            log.exception("Home tab Re-check failed")
        try:
            await self.publish(user)
        except Exception:
            log.exception("the Home tab of %s could not be published", user)


def _value(raw: object) -> tuple[str, str] | None:
    """The button's (account, source), read defensively (untrusted input)."""
    try:
        parsed = json.loads(str(raw))
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    account, source = parsed.get("a"), parsed.get("s")
    if not isinstance(account, str) or not isinstance(source, str) or not account or not source:
        return None
    if len(account) > 256 or len(source) > 256:
        return None
    return account, source
