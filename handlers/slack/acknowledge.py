"""The Acknowledge button of an automatic post: "@dana is on it", shown on the parent.

The click is acked at once (no I/O); the edit runs in the background: the parent is read as Slack has it
and written back with the acknowledgement and the same metadata (the restart dedupe looks for its run
ids), the Acknowledge button removed. A replayed click edits nothing twice (dedupe.py).

The watcher edits the same parent ("still failing", new run ids, "recovered") and Slack has no
compare-and-set: the acknowledgement changes only its own block, merged into the parent as re-read right
before the update, and read back after it: when a concurrent edit dropped it, it is merged again into
that edit (bounded), so neither the watcher's run ids and state nor the acknowledgement are rolled back.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from handlers.render.escape import escape
from handlers.render.summary import Message
from handlers.render.watch_posts import ACK, ack_edit
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
            if not await acknowledge_parent(deps.client, channel, ts, user, now):
                await respond_text(respond, "This message is not an automatic post of purview-bot any more.")
        except Exception:
            log.exception("acknowledging %s in %s failed", ts, channel)
            try:
                await respond_text(respond, "⚠️ purview-bot could not record the acknowledgement; try again.")
            except Exception:
                log.exception("could not answer through response_url")


async def acknowledge_parent(
    client: AsyncWebClient, channel: str, ts: str, user: str | None, now: datetime
) -> bool:
    """Merge "@user is on it" into the parent as Slack has it now; False when it is gone or not an
    automatic parent. Raises when Slack refuses the read or the update."""
    return await edit_parent(client, channel, ts, lambda message: ack_edit(message, user, now), _kept)


def _kept(after: dict[str, Any], written: Message, _: dict[str, Any]) -> bool:
    """Whether the parent read back still has the acknowledgement block written (a later edit computed
    from an older read drops it)."""
    ours = [b for b in written.get("blocks") or [] if isinstance(b, dict) and b.get("block_id") == ACK]
    now = [b for b in after.get("blocks") or [] if isinstance(b, dict) and b.get("block_id") == ACK]
    return not ours or any(_text(b) == _text(ours[0]) for b in now)


def _text(block: dict[str, Any]) -> str:
    return " ".join(str(e.get("text") or "") for e in block.get("elements") or [] if isinstance(e, dict))
