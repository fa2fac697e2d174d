"""`/purview-check watch | unwatch | watches`: channel watches kept in the store, which the watcher's
router reads as routes (the most specific wins)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store import Store, Watch, open_store
from handlers.watch.routing import Place, Route, Router, parse_routes
from tests.slack.conftest import CHANNEL, BotFactory, BotHarness, plain
from tests.slack.fake_slack import FakeSlack

ACCOUNT = "contoso-pv"
ARM_ID = (
    "/subscriptions/7e2e9e63-bacb-4459-8c63-99796f32e7cf/resourceGroups/rg-purview/providers/"
    "Microsoft.Purview/accounts/contoso-pv"
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """The store the bot uses: the harness points PURVIEW_BOT_DATABASE_URL at this SQLite file."""
    opened = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'purview-bot.db'}")
    yield opened
    await opened.close()


async def answer(bot: BotHarness, text: str, expect: str, *, channel: str = CHANNEL) -> str:
    """`/purview-check TEXT` in `channel`; the ephemeral answer, once it mentions `expect`."""
    ack = await bot.command(text, channel_id=channel)
    assert ack.status == 200
    return plain(await bot.ephemeral(ack, expect))


async def test_watch_watches_unwatch_round_trip_with_the_store(
    bot: BotHarness, slack: FakeSlack, store: Store
) -> None:
    said = await answer(bot, "watch --collection sales", "now gets")
    assert "collection sales in contoso-pv" in said
    assert await store.watches() == [Watch(CHANNEL, ACCOUNT, "sales", None)]

    # the source as Purview spells it, the account by name; the default account when none is given
    await answer(bot, "watch contoso-pv --source SALES-ADLS", "now gets")
    await answer(bot, "watch", "now gets")
    await answer(bot, "watch --source=hr-sql", "now gets", channel="C222")
    assert set(await store.watches()) == {
        Watch(CHANNEL, ACCOUNT, "sales", None),
        Watch(CHANNEL, ACCOUNT, None, "sales-adls"),
        Watch(CHANNEL, ACCOUNT, None, None),
        Watch("C222", ACCOUNT, None, "hr-sql"),
    }

    listed = await answer(bot, "watches", "automatic posts")
    assert "collection sales in contoso-pv" in listed
    assert "data source sales-adls in contoso-pv" in listed
    assert "every data source in contoso-pv" in listed
    assert "hr-sql" not in listed, "another channel's watch listed here"

    assert "already watches" in await answer(bot, "watch --collection sales", "already")
    assert len(await store.watches()) == 4

    # unwatch matches whatever the case; the other watches stay
    said = await answer(bot, "unwatch CONTOSO-PV --collection SALES", "no longer")
    assert "collection sales in contoso-pv" in said
    await answer(bot, "unwatch --source sales-adls", "no longer")
    await answer(bot, "unwatch", "no longer")
    assert await store.watches() == [Watch("C222", ACCOUNT, None, "hr-sql")]
    assert "watches nothing" in await answer(bot, "watches", "watches nothing")

    not_watched = await answer(bot, "unwatch --collection finance", "does not watch")
    assert "watches nothing" in not_watched

    await slack.settle()
    assert not slack.calls_to("chat.postMessage"), "a watch command posted in the channel"


async def test_a_second_channel_watching_the_same_scope_is_told(bot: BotHarness, store: Store) -> None:
    await answer(bot, "watch --source hr-sql", "now gets", channel="C222")
    said = await answer(bot, "watch --source hr-sql", "now gets")
    assert "Also watched from <#C222>" in said


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("watch --collection", "--collection needs a NAME"),
        ("watch --source=", "--source needs a NAME"),
        ("watch --collection sales --source hr-sql", "one of"),
        ("watch --source a --source b", "one of"),
        ("watch contoso-pv extra", "too many words after watch: extra"),
        ("watch --scan weekly", "unknown option --scan"),
        ("unwatch a b c", "too many words after unwatch"),
        ("watches contoso-pv", "watches takes nothing after it"),
        ("watches --all", "watches takes no option --all"),
    ],
)
async def test_bad_input_is_usage_and_what_was_wrong(
    bot: BotHarness, store: Store, text: str, complaint: str
) -> None:
    said = await answer(bot, text, "usage")
    assert complaint in said
    assert "/purview-check watch [ACCOUNT] [--collection NAME | --source NAME]" in said
    assert await store.watches() == []


async def test_unknown_account_lists_the_configured_ones(bot: BotHarness, store: Store) -> None:
    said = await answer(bot, "watch nope-pv --collection sales", "no purview account")
    assert "No Purview account nope-pv here. The accounts are: contoso-pv." in said
    said = await answer(bot, "unwatch nope-pv", "does not watch")
    assert "The accounts here are: contoso-pv." in said
    assert await store.watches() == []


async def test_unknown_source_gets_did_you_mean(bot: BotHarness, slack: FakeSlack, store: Store) -> None:
    said = await answer(bot, "watch --source sales-adl", "did you mean")
    assert "No data source named sales-adl. Did you mean: sales-adls" in said
    assert await store.watches() == []


async def test_a_collection_with_no_data_source_is_kept_with_a_note_and_escaped(
    bot: BotHarness, store: Store
) -> None:
    ack = await bot.command('watch --collection "<!channel> sale"')
    raw = await bot.ephemeral(ack, "no data source is in collection")
    assert "<!channel>" not in raw and "&lt;!channel&gt;" in raw
    assert await store.watches() == [Watch(CHANNEL, ACCOUNT, "<!channel> sale", None)]
    said = await answer(bot, "watch --collection salse", "no data source is in collection")
    assert "Collections with data sources: sales" in said
    listed = await bot.ephemeral(await bot.command("watches"), "automatic posts")
    assert "<!channel>" not in listed and "&lt;!channel&gt;" in listed


async def test_watch_commands_respect_the_channel_allow_list(
    start_bot: BotFactory, slack: FakeSlack, store: Store
) -> None:
    async with start_bot(env={"PURVIEW_BOT_ALLOWED_CHANNELS": "C_ALLOWED"}) as bot:
        for text in ("watch", "unwatch", "watches"):
            assert "not enabled in this channel" in await answer(bot, text, "not enabled")
        assert "now gets" in await answer(bot, "watch", "now gets", channel="C_ALLOWED")
    assert await store.watches() == [Watch("C_ALLOWED", ACCOUNT, None, None)]


async def test_help_names_the_watch_commands(bot: BotHarness) -> None:
    usage = await answer(bot, "help", "usage")
    for line in ("watch [ACCOUNT]", "unwatch [ACCOUNT]", "/purview-check watches"):
        assert line in usage


# --- routing: the watches are routes, the most specific wins (handlers/routing.py) -------------------


async def test_the_router_sends_a_scan_to_the_channel_that_watches_it(bot: BotHarness, store: Store) -> None:
    await answer(bot, "watch --collection sales", "now gets", channel="C_SALES")
    await answer(bot, "watch --source hr-sql", "now gets", channel="C_HR")
    watches = await store.watches()
    routes = parse_routes(json.dumps([{"channel": "C_ACCOUNT", "account": ACCOUNT}]))
    router = Router(routes, "C_DEFAULT")

    assert router.channel(Place(ACCOUNT, "sales", "sales-adls"), watches) == "C_SALES"
    # PURVIEW_ACCOUNTS may hold ARM ids: watches name the account
    assert router.channel(Place(ARM_ID, "people", "hr-sql"), watches) == "C_HR"
    assert router.channel(Place(ACCOUNT, "finance", "finance-sql"), watches) == "C_ACCOUNT"
    assert router.channel(Place("other-pv", "sales", "x"), watches) == "C_DEFAULT"
    # without the watches, the configured route takes them all
    assert router.channel(Place(ACCOUNT, "sales", "sales-adls")) == "C_ACCOUNT"


def test_a_watch_of_the_same_specificity_loses_to_a_configured_route() -> None:
    router = Router([Route("C_ROUTE", collection="sales")], None)
    watches = [Watch("C_WATCH", ACCOUNT, "sales", None)]
    # the watch is more specific (account and collection) than the route (collection only)
    assert router.channel(Place(ACCOUNT, "sales", "sales-adls"), watches) == "C_WATCH"
    router = Router([Route("C_ROUTE", account=ACCOUNT, collection="sales")], None)
    assert router.channel(Place(ACCOUNT, "sales", "sales-adls"), watches) == "C_ROUTE"
    # a source watch beats any collection route
    watches.append(Watch("C_SOURCE", ACCOUNT, None, "sales-adls"))
    assert router.channel(Place(ACCOUNT, "sales", "sales-adls"), watches) == "C_SOURCE"
