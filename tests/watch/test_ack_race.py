"""An Acknowledge click and the watcher's edit of the same parent, interleaved (Slack has no
compare-and-set): whichever writes last from an older read, neither the acknowledgement nor the watcher's
run ids and state are rolled back. Both go through the fake Slack over HTTP; the interleaving is a web
client that, once its own chat.update is answered, lets the other side's write (computed from the parent
as it was before) land."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import Metrics
from bot.slack_client import web_client
from handlers.render.watch_posts import ACK, ack_edit, metadata_runs, repeat_edit
from handlers.slack.acknowledge import acknowledge_parent
from handlers.slack.posting import update_message
from handlers.slack.watch_publisher import ChannelPacer, WatchPublisher, read_message
from handlers.watch.model import Failure
from tests.watch.conftest import ACCOUNT, CHANNEL, NOW, TOKEN, Rig, RigFactory

USER = "U0DANA"
Write = tuple[dict[str, Any], dict[str, Any]]


def interleaved(r: Rig, other: Write, channel: str, ts: str) -> AsyncWebClient:
    """A web client whose first chat.update is followed, once Slack answered it, by `other` (the other
    side's message and metadata, computed from an older read) written to the same parent."""
    writer = web_client(token=TOKEN, base_url=r.slack.url, counter=Metrics())
    client = web_client(token=TOKEN, base_url=r.slack.url, counter=Metrics())
    update = client.chat_update
    pending = [other]

    async def chat_update(**kwargs: Any) -> Any:
        response = await update(**kwargs)
        if pending:
            message, metadata = pending.pop()
            await update_message(
                writer,
                channel=channel,
                ts=ts,
                text=message["text"],
                blocks=message["blocks"],
                metadata=metadata,
            )
        return response

    client.chat_update = chat_update  # type: ignore[method-assign]
    return client


async def _open_thread(r: Rig) -> tuple[str, Failure]:
    """A posted failure parent, and a repeat failure of its scan."""
    watcher = r.watcher()
    await watcher.sweep(ACCOUNT)
    r.add_run("sales-adls", "weekly", status="Failed", ended=NOW - timedelta(minutes=2))
    await watcher.sweep(ACCOUNT)
    [parent] = r.parents()
    again = r.add_run("sales-adls", "weekly", status="Failed", ended=NOW + timedelta(minutes=20))
    return str(parent.response["ts"]), Failure(
        ACCOUNT, "sales-adls", "sales", "weekly", again, (str(again["id"]),)
    )


def _acknowledged(r: Rig, ts: str) -> bool:
    held = r.slack.messages[(CHANNEL, ts)]
    return any(isinstance(b, dict) and b.get("block_id") == ACK and USER in str(b) for b in held.blocks)


async def test_a_watcher_edit_from_an_older_read_does_not_drop_the_acknowledgement(rig: RigFactory) -> None:
    async with rig() as r:
        ts, repeat = await _open_thread(r)
        reader = web_client(token=TOKEN, base_url=r.slack.url, counter=Metrics())
        before = await read_message(reader, CHANNEL, ts)
        assert before is not None
        stale = repeat_edit(before, [repeat], None, NOW)  # the watcher read the parent before the click
        assert stale is not None

        assert await acknowledge_parent(interleaved(r, stale, CHANNEL, ts), CHANNEL, ts, USER, NOW)

        held = r.slack.messages[(CHANNEL, ts)]
        assert _acknowledged(r, ts), "the watcher's later write dropped the acknowledgement"
        assert set(repeat.run_ids) <= set(metadata_runs({"metadata": held.metadata}))
        assert "Still failing" in held.text


async def test_an_acknowledgement_from_an_older_read_does_not_roll_back_the_watchers_edit(
    rig: RigFactory,
) -> None:
    async with rig() as r:
        ts, repeat = await _open_thread(r)
        reader = web_client(token=TOKEN, base_url=r.slack.url, counter=Metrics())
        before = await read_message(reader, CHANNEL, ts)
        assert before is not None
        stale = ack_edit(before, USER, NOW)  # the click read the parent before the watcher's edit
        assert stale is not None

        publisher = WatchPublisher(interleaved(r, stale, CHANNEL, ts), ChannelPacer(interval=0.0))
        await publisher.post_repeat(CHANNEL, ts, [repeat], None, NOW)

        held = r.slack.messages[(CHANNEL, ts)]
        runs = metadata_runs({"metadata": held.metadata})
        assert set(repeat.run_ids) <= set(runs), f"the acknowledgement rolled the run ids back: {runs}"
        assert "Still failing" in held.text
        assert _acknowledged(r, ts)
