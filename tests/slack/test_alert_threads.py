"""Re-run, `recheck` and the parent's buttons in the threads of automatic posts, through the bot's HTTP
endpoint (signed requests) and the fake Slack, with the watcher posting into the same fake Slack.

The bugs of issue 10: a Re-run in an automatic post's thread overwrote the alert parent with a
slash-command summary and dropped its run-id metadata (which the restart dedupe relies on; a storm
parent became one source's summary), and `recheck` there answered that it found no report. A Re-check
of an automatic post re-checks that post's sources (all of them for a storm) and replies in its thread;
the parent and its metadata stay as the watcher left them.
"""

from __future__ import annotations

import contextlib
import copy
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.azure import azure_clients
from bot.metrics import Metrics
from bot.service import AzureDiagnosisService
from bot.settings import Settings
from bot.slack_client import web_client
from bot.store import Mute, Store, open_store
from handlers.slack.watch_publisher import ChannelPacer, WatchPublisher
from handlers.watch.config import WatchConfig
from handlers.watch.routing import Router
from handlers.watch.watcher import Watcher
from sandbox import Sandbox, load_world
from tests.slack import signing
from tests.slack.conftest import BotFactory, BotHarness
from tests.slack.fake_slack import Call, FakeSlack, Json
from tests.watch.conftest import assert_block_kit, make_run, sample_world

ACCOUNT = "contoso-pv"
ALERTS = "C0ALERTS"


@dataclass
class Rig:
    bot: BotHarness
    slack: FakeSlack
    sandbox: Sandbox
    store: Store
    watcher: Watcher

    def fail(self, source: str, scan: str, *, minutes_ago: float = 2) -> Json:
        runs: list[Json] = self.sandbox.world.purview[ACCOUNT].runs.setdefault(f"{source}/{scan}", [])
        ended = datetime.now(UTC) - timedelta(minutes=minutes_ago)
        run = make_run(runs[0] if runs else {}, status="Failed", ended=ended)
        runs.insert(0, run)
        return run

    def parents(self) -> list[Call]:
        return [
            c
            for c in self.slack.calls_to("chat.postMessage", ok=True)
            if c.args.get("channel") == ALERTS and not c.args.get("thread_ts")
        ]

    def held(self, parent: Call) -> Any:
        return self.slack.messages[(ALERTS, str(parent.response["ts"]))]


Start = Callable[..., contextlib.AbstractAsyncContextManager[Rig]]


@pytest.fixture
def alert_rig(start_bot: BotFactory, tmp_path: Path) -> Start:
    """The bot (HTTP, its store in tmp_path) and a watcher on the same sandbox, fake Slack and store."""

    @contextlib.asynccontextmanager
    async def start(
        world: dict[str, Any] | None = None, env: dict[str, str] | None = None
    ) -> AsyncIterator[Rig]:
        async with contextlib.AsyncExitStack() as stack:
            bot = await stack.enter_async_context(
                start_bot(world=load_world(world or sample_world()), env=env)
            )
            settings = Settings()
            clients = await stack.enter_async_context(azure_clients(settings))
            store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'purview-bot.db'}")
            stack.push_async_callback(store.close)
            config = WatchConfig(accounts=(ACCOUNT,), lookback=timedelta(hours=1), holder=uuid.uuid4().hex)
            client = web_client(token="xoxb-watcher", base_url=bot.slack.url, counter=Metrics())
            watcher = Watcher(
                config=config,
                store=store,
                purview=clients.purview,
                service=AzureDiagnosisService(clients, settings),
                publisher=WatchPublisher(client, ChannelPacer(interval=0.0)),
                router=Router([], ALERTS),
            )
            await watcher.sweep(ACCOUNT)  # the cursors start at the sample's runs
            yield Rig(bot, bot.slack, bot.sandbox, store, watcher)

    return start


def storm_world(names: list[str]) -> dict[str, Any]:
    """The sample plus SQL sources like finance-sql (one vault, Get but not List)."""
    world = sample_world()
    pv = world["purview"][ACCOUNT]
    source = next(d for d in pv["dataSources"] if d["name"] == "finance-sql")
    for name in names:
        doc = copy.deepcopy(source)
        doc["name"], doc["id"] = name, f"datasources/{name}"
        pv["dataSources"].append(doc)
        pv["scans"][name] = copy.deepcopy(pv["scans"]["finance-sql"])
        pv["runs"][f"{name}/nightly"] = []
    return world


def rerun_button(calls: list[Call]) -> Call:
    return next(c for c in reversed(calls) if c.has_rerun_button)


def unchanged(rig: Rig, parent: Call) -> None:
    """The automatic parent is as the watcher posted it: never edited by a Re-check, metadata kept."""
    ts = parent.response["ts"]
    edits = [c for c in rig.slack.calls_to("chat.update") if c.args.get("ts") == ts]
    assert edits == [], f"the alert parent was edited: {[c.text[:120] for c in edits]}"
    held = rig.held(parent)
    assert held.metadata == parent.args["metadata"]
    assert held.text == parent.args["text"]


async def test_rerun_in_an_automatic_posts_thread_keeps_the_parent_and_replies_in_the_thread(
    alert_rig: Start,
) -> None:
    async with alert_rig() as rig:
        rig.fail("sales-adls", "weekly")
        await rig.watcher.sweep(ACCOUNT)
        [parent] = rig.parents()
        ts = str(parent.response["ts"])
        report = rerun_button(rig.slack.thread(ALERTS, ts))

        clicked = time.monotonic()
        ack = await rig.bot.click(report.button("purview_rerun")["value"], ALERTS, report.response["ts"], ts)  # type: ignore[index]
        assert ack.status == 200
        done = await rig.slack.wait_for(
            "chat.update",
            lambda c: c.at >= clicked and c.args.get("channel") == ALERTS and "Checking" not in c.text,
        )
        await rig.slack.settle()
        assert done.args["ts"] != ts
        unchanged(rig, parent)
        new = [c for c in rig.slack.thread(ALERTS, ts) if c.at >= clicked]
        assert new, "nothing was posted in the thread"
        assert "sales-adls" in "\n".join(c.text for c in new) + done.text
        assert not [
            c
            for c in rig.slack.calls_to("chat.postMessage")
            if c.at >= clicked and not c.args.get("thread_ts")
        ]


async def test_recheck_in_an_automatic_posts_thread_rechecks_its_source(alert_rig: Start) -> None:
    async with alert_rig() as rig:
        rig.fail("sales-adls", "weekly")
        await rig.watcher.sweep(ACCOUNT)
        [parent] = rig.parents()
        ts = str(parent.response["ts"])

        asked = time.monotonic()
        mention = signing.app_mention("recheck", ALERTS, f"{time.time():.6f}", ts)
        assert (await rig.bot.send(mention)).status == 200
        done = await rig.slack.wait_for(
            "chat.update",
            lambda c: c.at >= asked and c.args.get("channel") == ALERTS and "Checking" not in c.text,
        )
        await rig.slack.settle()
        said = "\n".join(c.text for c in rig.slack.thread(ALERTS, ts) if c.at >= asked)
        assert "found none" not in said and "no report" not in said.lower()
        assert "Re-checking sales-adls in contoso-pv… requested by <@" in said, said[:300]
        assert "sales-adls" in done.text
        assert done.args["ts"] != ts
        unchanged(rig, parent)


async def test_recheck_of_a_storm_parent_rechecks_every_source_and_keeps_the_parent(
    alert_rig: Start,
) -> None:
    names = ["fin-sql-a", "fin-sql-b", "fin-sql-c"]
    async with alert_rig(storm_world(names)) as rig:
        for name in names:
            rig.fail(name, "nightly")
        await rig.watcher.sweep(ACCOUNT)
        [parent] = rig.parents()
        assert len(parent.args["metadata"]["event_payload"]["runs"]) == 3
        ts = str(parent.response["ts"])
        report = rerun_button(rig.slack.thread(ALERTS, ts))

        # the Re-check button on the parent re-checks every source (the Re-run of a report in the
        # thread re-checks that report's source only: test_a_storm_sources_button_rechecks_that_source_only)
        assert report.button("purview_rerun") is not None
        for message_ts, value, action in ((ts, "parent", "purview_alert_recheck"),):
            clicked = time.monotonic()
            request = signing.block_action(
                value, ALERTS, message_ts, ts, rig.bot.new_response_url("act"), action_id=action
            )
            assert (await rig.bot.send(request)).status == 200
            await rig.slack.wait_for_count(
                "chat.postMessage",
                len(names),
                lambda c: (
                    c.at >= clicked  # noqa: B023 - awaited within the iteration
                    and c.args.get("thread_ts") == ts
                    and "Checking" not in c.text
                    and any(n in c.text for n in names)
                ),
                timeout=20,
            )
            await rig.slack.settle()
            said = "\n".join(c.text for c in rig.slack.thread(ALERTS, ts) if c.at >= clicked)
            assert all(name in said for name in names), said[:500]
            for call in rig.slack.thread(ALERTS, ts):
                if call.at >= clicked and call.args.get("blocks"):
                    assert_block_kit(call.args["blocks"])
            unchanged(rig, parent)


def said_since(rig: Rig, ts: str, since: float) -> str:
    """What the thread under `ts` shows now of the messages posted there since `since` (their edits)."""
    texts = []
    for call in rig.slack.thread(ALERTS, ts):
        if call.at >= since:
            held = rig.slack.messages.get((ALERTS, str(call.response["ts"])))
            texts.append(held.text if held is not None else call.text)
    return "\n".join(texts)


async def test_a_storm_sources_button_rechecks_that_source_only(alert_rig: Start) -> None:
    """In a storm thread, the Re-run button of one source's summary (after the parent's Re-check) and
    of the storm's report re-check that source only; the parent's own button re-checks them all."""
    names = ["fin-sql-a", "fin-sql-b", "fin-sql-c"]
    async with alert_rig(storm_world(names)) as rig:
        for name in names:
            rig.fail(name, "nightly")
        await rig.watcher.sweep(ACCOUNT)
        [parent] = rig.parents()
        ts = str(parent.response["ts"])
        storm_report = rerun_button(rig.slack.thread(ALERTS, ts))
        clicked = time.monotonic()
        request = signing.block_action(
            "parent", ALERTS, ts, ts, rig.bot.new_response_url("act"), action_id="purview_alert_recheck"
        )
        assert (await rig.bot.send(request)).status == 200
        await rig.slack.wait_for_count(
            "chat.postMessage",
            len(names),
            lambda c: c.at >= clicked and c.args.get("thread_ts") == ts and c.has_rerun_button,
            timeout=20,
        )
        await rig.slack.settle()
        summaries = [c for c in rig.slack.thread(ALERTS, ts) if c.at >= clicked and c.has_rerun_button]
        one = next(c for c in summaries if "fin-sql-b" in c.text)

        for message, source in ((one, "fin-sql-b"), (storm_report, "fin-sql-a")):
            value = str(message.button("purview_rerun")["value"])  # type: ignore[index]
            assert source in value
            clicked = time.monotonic()
            request = signing.block_action(
                value, ALERTS, str(message.response["ts"]), ts, rig.bot.new_response_url("act")
            )
            assert (await rig.bot.send(request)).status == 200
            await rig.slack.wait_for(
                "chat.update",
                lambda c: c.at >= clicked and source in c.text and "hecking" not in c.text,  # noqa: B023
                timeout=20,
            )
            await rig.slack.settle()
            said = said_since(rig, ts, clicked)
            assert source in said
            others = [n for n in names if n != source and n in said]
            assert others == [], f"{source}'s button re-checked {others}: {said[:400]}"
            assert "scans of this post" not in said
        unchanged(rig, parent)


async def test_rerun_of_another_sources_report_in_an_alert_thread_rechecks_that_source(
    alert_rig: Start,
) -> None:
    """`@purview-bot check finance-sql` in sales-adls's alert thread: its report's Re-run re-checks
    finance-sql (as a Re-run anywhere else), not the alert's source, and leaves the alert parent alone."""
    async with alert_rig() as rig:
        rig.fail("sales-adls", "weekly")
        await rig.watcher.sweep(ACCOUNT)
        [parent] = rig.parents()
        ts = str(parent.response["ts"])
        asked = time.monotonic()
        mention = signing.app_mention("check finance-sql", ALERTS, f"{time.time():.6f}", ts)
        assert (await rig.bot.send(mention)).status == 200
        await rig.slack.wait_for(
            "chat.update", lambda c: c.at >= asked and "finance-sql" in c.text and "hecking" not in c.text
        )
        await rig.slack.settle()
        report = rerun_button([c for c in rig.slack.thread(ALERTS, ts) if c.at >= asked])
        value = str(report.button("purview_rerun")["value"])  # type: ignore[index]
        assert "finance-sql" in value

        clicked = time.monotonic()
        ack = await rig.bot.click(value, ALERTS, report.response["ts"], ts)
        assert ack.status == 200
        done = await rig.slack.wait_for(
            "chat.update",
            lambda c: c.at >= clicked and "finance-sql" in c.text and "hecking" not in c.text,
            timeout=20,
        )
        await rig.slack.settle()
        assert done.args["ts"] != ts
        said = said_since(rig, ts, clicked)
        updates = "\n".join(c.text for c in rig.slack.calls_to("chat.update") if c.at >= clicked)
        assert "sales-adls" not in said + updates, (said + updates)[:400]
        unchanged(rig, parent)


async def test_parent_recheck_of_a_deleted_source_says_so_in_place_of_the_progress(alert_rig: Start) -> None:
    """The alert's source was deleted since: the parent's Re-check does not leave "Re-checking X…" in
    the thread forever; that reply becomes the not-found answer."""
    async with alert_rig() as rig:
        rig.fail("sales-adls", "weekly")
        await rig.watcher.sweep(ACCOUNT)
        [parent] = rig.parents()
        ts = str(parent.response["ts"])
        account = rig.sandbox.world.purview[ACCOUNT]
        account.data_sources[:] = [d for d in account.data_sources if d["name"] != "sales-adls"]
        clicked = time.monotonic()
        request = signing.block_action(
            "parent", ALERTS, ts, ts, rig.bot.new_response_url("act"), action_id="purview_alert_recheck"
        )
        assert (await rig.bot.send(request)).status == 200
        await rig.slack.wait_for(
            "chat.update", lambda c: c.at >= clicked and "sales-adls" in c.text and "hecking" not in c.text
        )
        await rig.slack.settle()
        said = said_since(rig, ts, clicked)
        assert "sales-adls" in said and "No " in said, said
        assert "hecking" not in said, f"a reply still says it is re-checking: {said}"
        unchanged(rig, parent)


async def test_acknowledge_shows_who_is_on_it_on_the_parent_and_keeps_the_metadata(
    alert_rig: Start,
) -> None:
    async with alert_rig() as rig:
        first = rig.fail("sales-adls", "weekly", minutes_ago=20)
        await rig.watcher.sweep(ACCOUNT)
        [parent] = rig.parents()
        ts = str(parent.response["ts"])
        assert parent.button("purview_alert_ack") is not None

        clicked = time.monotonic()
        request = signing.block_action(
            "ack",
            ALERTS,
            ts,
            ts,
            rig.bot.new_response_url("act"),
            action_id="purview_alert_ack",
            user_id="U0DANA",
        )
        ack = await rig.bot.send(request)
        assert ack.status == 200 and ack.elapsed < 1.0
        edit = await rig.slack.wait_for("chat.update", lambda c: c.at >= clicked and c.args.get("ts") == ts)
        assert "<@U0DANA> is on it" in edit.text
        held = rig.held(parent)
        assert held.metadata == parent.args["metadata"]
        assert_block_kit(held.blocks)
        assert "purview_alert_ack" not in str(held.blocks) and "purview_alert_recheck" in str(held.blocks)

        # a repeat failure edits the parent again: the acknowledgement and the first run id stay
        rig.fail("sales-adls", "weekly", minutes_ago=1)
        await rig.watcher.sweep(ACCOUNT)
        held = rig.held(parent)
        assert "<@U0DANA> is on it" in str(held.blocks) and "Still failing since" in held.text
        assert held.metadata["event_payload"]["runs"][0] == first["id"]
        assert len(held.metadata["event_payload"]["runs"]) == 2


async def test_mute_holds_back_a_sources_failures_until_unmute(alert_rig: Start) -> None:
    async with alert_rig(env={"PURVIEW_BOT_ALERT_CHANNEL": ALERTS}) as rig:
        # muting takes posts away from on-call: only its on-call channel (or an admin) may
        refused = await rig.bot.command("mute sales-adls 4h", channel_id="C0ELSEWHERE")
        assert "Only the on-call channel" in await rig.bot.ephemeral(refused, "can mute it")
        assert await rig.store.mutes(ACCOUNT) == []

        ack = await rig.bot.command("mute SALES-ADLS 4h", channel_id=ALERTS)
        said = await rig.bot.ephemeral(ack, "recorded, not posted")
        assert "Muted: failures of `sales-adls` in `contoso-pv`" in said and "<!date^" in said
        [mute] = await rig.store.mutes(ACCOUNT)
        assert mute.source == "sales-adls" and mute.muted_by == "W111"
        assert timedelta(hours=3, minutes=59) < mute.until - datetime.now(UTC) <= timedelta(hours=4)

        rig.fail("sales-adls", "weekly", minutes_ago=5)
        result = await rig.watcher.sweep(ACCOUNT)
        assert result.new_failures == 1 and rig.parents() == []

        ack = await rig.bot.command("unmute sales-adls", channel_id=ALERTS)
        assert "are posted again" in await rig.bot.ephemeral(ack, "Unmuted")
        assert await rig.store.mutes(ACCOUNT) == []
        rig.fail("sales-adls", "weekly", minutes_ago=1)
        await rig.watcher.sweep(ACCOUNT)
        assert len(rig.parents()) == 1


async def test_app_home_lists_every_watched_source_from_the_store_without_azure(alert_rig: Start) -> None:
    async with alert_rig() as rig:
        rig.fail("sales-adls", "weekly", minutes_ago=30)
        await rig.watcher.sweep(ACCOUNT)
        await rig.store.mute(Mute(ACCOUNT, "hr-sql", datetime.now(UTC) + timedelta(hours=4), "U0DANA"))
        rig.sandbox.clear_requests()

        opened = signing.event_callback(
            {
                "type": "app_home_opened",
                "user": "U0DANA",
                "channel": "D0DANA",
                "tab": "home",
                "event_ts": "1.2",
            }
        )
        ack = await rig.bot.send(opened)
        assert ack.status == 200 and ack.elapsed < 1.0
        await rig.slack.wait_for("views.publish", lambda c: c.args.get("user_id") == "U0DANA")
        assert rig.sandbox.requests == [], "opening the Home tab read Azure"
        view = rig.slack.home_views["U0DANA"]
        assert_block_kit(view["blocks"], limit=100)
        lines = {
            str(b["accessory"]["value"]): str(b["text"]["text"])
            for b in view["blocks"]
            if b.get("type") == "section" and b.get("accessory")
        }
        sales = lines['{"a":"contoso-pv","s":"sales-adls"}']
        assert sales.startswith("*sales-adls* · 🔴 FAILING since <!date^") and "(scan `weekly`)" in sales
        assert "last check 🔴 FAIL <!date^" in sales  # the watcher's diagnosis, saved as the last report
        assert "🔕 muted until <!date^" in lines['{"a":"contoso-pv","s":"hr-sql"}']
        scans = {(c.source, c.scan) for c in (await rig.store.cursors(ACCOUNT)).values()}
        assert len(lines) == len({s for s, _ in scans}) >= 10  # every source the watcher sweeps
        assert any("🟢 OK · last run succeeded" in line for line in lines.values())

        # its Re-check diagnoses that source, saves the report and publishes the tab again
        clicked = time.monotonic()
        request = signing.block_action(
            '{"a":"contoso-pv","s":"crm-sql"}',
            "D0DANA",
            "1.2",
            None,
            rig.bot.new_response_url("home"),
            action_id="purview_home_recheck",
            user_id="U0DANA",
        )
        assert (await rig.bot.send(request)).status == 200
        await rig.slack.wait_for_count(
            "views.publish", 2, lambda c: c.at >= clicked and c.args.get("user_id") == "U0DANA", timeout=20
        )
        assert await rig.store.last_report(ACCOUNT, "crm-sql") is not None
        final = rig.slack.home_views["U0DANA"]
        assert "re-checking" not in str(final) and "crm-sql" in str(final)


async def test_app_home_of_someone_outside_the_allowed_user_group_shows_no_sources(alert_rig: Start) -> None:
    async with alert_rig(env={"PURVIEW_BOT_ALLOWED_USERGROUP": "S0PURVIEW"}) as rig:
        rig.slack.usergroups["S0PURVIEW"] = ["U0DANA"]
        for user in ("U0EVE", "U0DANA"):
            event = {
                "type": "app_home_opened",
                "user": user,
                "channel": "D0",
                "tab": "home",
                "event_ts": "1.3",
            }
            assert (await rig.bot.send(signing.event_callback(event))).status == 200
            await rig.slack.wait_for("views.publish", lambda c, u=user: c.args.get("user_id") == u)  # type: ignore[misc]
        assert "sales-adls" not in str(rig.slack.home_views["U0EVE"])
        assert "sales-adls" in str(rig.slack.home_views["U0DANA"])
