"""The Acknowledge button of an automatic post: "@dana is on it", shown on the parent.

The click is acked at once (no I/O); the edit runs in the background: the parent is read as Slack has it
and written back with the acknowledgement and the same metadata (the restart dedupe looks for its run
ids), the Acknowledge button removed. A replayed click edits nothing twice (dedupe.py).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from handlers.render.escape import escape
from handlers.render.watch_posts import ack_edit
from handlers.slack.deps import Deps
from handlers.slack.gate import ours
from handlers.slack.posting import respond_text
from handlers.slack.watch_publisher import edit_parent

log = logging.getLogger(__name__)


class AcknowledgeAction:
    """`handle` acks in the request and leaves the parent's edit to a background task."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def handle(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        self._deps.metrics.command("acknowledge")
        await ack()
        self._deps.background.spawn(self.run(body, respond), "acknowledge")

    async def run(self, body: dict[str, Any], respond: AsyncRespond) -> None:
        deps = self._deps
        container = body.get("container") or {}
        channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
        ts = str(container.get("message_ts") or "")
        user = (body.get("user") or {}).get("id")
        try:
            if not channel or not ts or not await ours(deps, body):
                return
            refusal = await deps.access.refusal(deps.client, channel, user)
            if refusal:
                await respond_text(respond, escape(refusal))
                return
            now = datetime.now(UTC)
            if not await edit_parent(deps.client, channel, ts, lambda m: ack_edit(m, user, now)):
                await respond_text(respond, "This message is not an automatic post of purview-bot any more.")
        except Exception:
            log.exception("acknowledging %s in %s failed", ts, channel)
            try:
                await respond_text(respond, "⚠️ purview-bot could not record the acknowledgement; try again.")
            except Exception:
                log.exception("could not answer through response_url")
