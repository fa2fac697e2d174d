"""The "Show evidence" button of a finding (`purview_evidence`): the full evidence in a modal.

The thread shows each problem's evidence as one sentence; the data the check decided on opens on demand,
read from the source's last report in the store (no Azure call, so no admission slot). The button's value
names the finding (account, source, check, scan, index) and comes back from Slack as untrusted input: it
is parsed strictly. When the modal cannot be opened (the click's trigger expired: Slack gives 3 s), the
evidence goes to the clicker alone through the response URL.

The URL buttons of a summary (Open in Purview, Guide) also send their clicks: `LinkButtons` acks them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from handlers.render.changes import NAME_LIMIT, stored_report_time
from handlers.render.escape import code, escape
from handlers.render.findings import EVIDENCE_ACTION_ID, EVIDENCE_VERSION, evidence_text, evidence_view
from handlers.render.summary import LINK_ACTION_IDS
from handlers.slack.deps import Deps
from handlers.slack.posting import respond_text

log = logging.getLogger(__name__)

__all__ = ["EVIDENCE_ACTION_ID", "LINK_ACTION_IDS", "EvidenceAction", "LinkButtons", "parse_evidence_value"]

STORE_SECONDS = 2.0  # the trigger_id of a click is valid for 3 s
GONE = (
    "The evidence of this report is no longer kept (the source was checked again since, or the bot's "
    "store is off). Press Re-check for a fresh report."
)


@dataclass(frozen=True)
class EvidenceRequest:
    account: str
    source: str
    check: str
    scan: str | None
    index: int


def parse_evidence_value(value: object) -> EvidenceRequest:
    """The button's value, strictly: anything unexpected is a ValueError."""
    if not isinstance(value, str) or len(value) > 2000:
        raise ValueError("evidence value: expected a string of at most 2000 characters")
    try:
        data = json.loads(value)
    except json.JSONDecodeError:
        raise ValueError("evidence value: not JSON") from None
    if (
        not isinstance(data, dict)
        or data.get("v") != EVIDENCE_VERSION
        or set(data) != {"v", "a", "s", "k", "c", "i"}
    ):
        raise ValueError("evidence value: not a purview-bot evidence button")
    names = [data.get(k) for k in ("a", "s", "k", "c")]
    if not all(isinstance(n, str) and len(n) <= NAME_LIMIT and "\n" not in n for n in names):
        raise ValueError("evidence value: names must be single-line strings")
    account, source, check, scan = (str(n) for n in names)
    index = data.get("i")
    if (
        not account
        or not source
        or not check
        or not isinstance(index, int)
        or isinstance(index, bool)
        or not 0 <= index < 100
    ):
        raise ValueError("evidence value: missing names or a bad index")
    return EvidenceRequest(account=account, source=source, check=check, scan=scan or None, index=index)


def find_finding(report: dict[str, Any], request: EvidenceRequest) -> dict[str, Any] | None:
    """The finding the button names in a stored report (`Report.to_json()`), if it is still there."""
    findings = report.get("findings")
    if not isinstance(findings, list):
        return None
    same = [
        f
        for f in findings
        if isinstance(f, dict) and f.get("check") == request.check and (f.get("scan") or None) == request.scan
    ]
    return same[request.index] if request.index < len(same) else None


class EvidenceAction:
    """`handle` acks in the request (no I/O) and leaves the modal to a background task."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def handle(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        self._deps.metrics.command("evidence")
        self._deps.background.spawn(self.run(body, action, respond), "evidence")

    async def run(self, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond) -> None:
        try:
            await self._run(body, action, respond)
        except Exception:
            log.exception("Show evidence failed")
            await _try_respond(respond, "⚠️ purview-bot could not show this evidence (see its log).")

    async def _run(self, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond) -> None:
        deps = self._deps
        channel = str(
            (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or ""
        )
        user = (body.get("user") or {}).get("id")
        refusal = await deps.access.refusal(deps.client, channel or None, user)
        if refusal:
            await respond_text(respond, escape(refusal))
            return
        try:
            request = parse_evidence_value(action.get("value"))
        except ValueError as error:
            log.warning("evidence value refused: %s", error)
            await respond_text(respond, "This button is not one purview-bot can read; run the command again.")
            return
        stored = await self._stored(request)
        finding = find_finding(stored, request) if stored is not None else None
        if stored is None or finding is None:
            await respond_text(respond, escape(GONE))
            return
        checked_at = stored_report_time(stored)
        trigger = body.get("trigger_id")
        if isinstance(trigger, str) and trigger:
            try:
                await deps.client.views_open(
                    trigger_id=trigger, view=evidence_view(finding, checked_at=checked_at)
                )
                return
            except Exception as error:
                log.warning(
                    "evidence modal for %s not opened (%s): answering privately", request.source, error
                )
        await respond_text(respond, evidence_text(finding, checked_at=checked_at))

    async def _stored(self, request: EvidenceRequest) -> dict[str, Any] | None:
        store = self._deps.store
        if store is None:
            return None
        try:
            async with asyncio.timeout(STORE_SECONDS):
                return await store.last_report(request.account, request.source)
        except Exception as error:
            log.warning(
                "could not read the last report of %s for its evidence: %s", code(request.source), error
            )
            return None


class LinkButtons:
    """Open in Purview, Guide: URL buttons open their page in the browser; Slack still sends the click,
    which is acked so the client shows no error, and nothing else."""

    async def handle(self, ack: AsyncAck) -> None:
        await ack()


async def _try_respond(respond: AsyncRespond, text: str) -> None:
    try:
        await respond_text(respond, text)
    except Exception:
        log.exception("could not answer through response_url")
